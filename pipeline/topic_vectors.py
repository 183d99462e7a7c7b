"""The sentence vectors of a topic fit, kept for the next refit so it embeds only the turns it has not seen.

A refit embeds every untagged turn of its window (28 days by default), and embedding is slow: about 300
distinct turns a second on 2 cores. At 20,000 calls a night a window holds millions of turns, hours of
embedding, though consecutive windows share most of their days (a weekly refit, 21 of 28) and a refit after
a signals change shares all of them. So each fit with embedding topics saves its turns' vectors beside the
model (`models/topics-<run_id>.vectors.npz`, named in the store's meta as `topic_vectors`), keyed by a hash of
the text, and the next fit takes from it what it can. The file holds one window (each fit writes it anew),
goes when the store drops the model (`callintel forget` drops both), and is only ever a cache: without it a
fit embeds everything, as before.
"""
from __future__ import annotations

import hashlib
import zipfile

import numpy as np

from models.topics import EMBEDDING_DIM, EMBEDDING_MODEL, embed

KEY_BYTES = 16


class Cache:
    """Vectors of a store's last fit (store.meta()['topic_vectors']), and the file this run's fit saves."""

    def __init__(self, store, run_id: str):
        self.store = store
        self.name = f"topics-{run_id}.vectors.npz"
        self.saved: str | None = None  # the file name, once saved: the commit of the fit names it in meta
        self.embedded = 0              # distinct texts this fit had to embed
        self.reused = 0                # and those it took from the last fit's file

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Unit sentence vectors of texts (as models.topics.embed), embedding only those the last fit lacked;
        then saves this fit's vectors for the next one."""
        keys = np.array([_key(t) for t in texts], dtype=f"S{KEY_BYTES}")
        unique, first, back = np.unique(keys, return_index=True, return_inverse=True)
        known_keys, known = self._load()
        at = np.searchsorted(known_keys, unique)
        found = at < len(known_keys)
        found[found] = known_keys[at[found]] == unique[found]
        vectors = np.zeros((len(unique), EMBEDDING_DIM), np.float32)
        vectors[found] = known[at[found]]
        del known  # a window's vectors can be gigabytes: never three copies at once
        missing = np.flatnonzero(~found)
        if len(missing):
            vectors[missing] = embed([texts[first[i]] for i in missing])
        self.embedded, self.reused = len(missing), int(found.sum())
        self.store.save_model(self.name, lambda path: _write(path, unique, vectors))
        self.saved = self.name
        return vectors[np.asarray(back).ravel()]

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted keys, their vectors) of the last fit; none when there is no file or it is not usable."""
        name = self.store.meta().get("topic_vectors")
        empty = np.zeros(0, f"S{KEY_BYTES}"), np.zeros((0, EMBEDDING_DIM), np.float32)
        if not name:
            return empty
        try:
            with np.load(self.store.out / "models" / name, allow_pickle=False) as saved:
                keys, vectors = saved["keys"], saved["vectors"]
                if str(saved["model"]) != EMBEDDING_MODEL or vectors.shape != (len(keys), EMBEDDING_DIM):
                    return empty
                return keys, vectors
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return empty  # a cache: the fit embeds what it cannot take from it


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=KEY_BYTES).digest()


def _write(path, keys: np.ndarray, vectors: np.ndarray) -> None:
    with open(path, "wb") as file:  # a file object: np.savez would add ".npz" to the temporary file's name
        np.savez(file, keys=keys, vectors=vectors, model=np.array(EMBEDDING_MODEL))
