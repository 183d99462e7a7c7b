"""Sentence vectors of customer turns, kept so a topic refit embeds only the turns nobody embedded before.

A refit embeds every untagged turn of its window (28 days by default), and embedding is slow: about 650
distinct turns a second on 2 cores. At 20,000 calls a night a window holds millions of turns, hours of
embedding, though consecutive windows share most of their days (a weekly refit, 21 of 28) and a refit after
a signals change shares all of them. And the turns a weekly refit sees for the first time were embedded
already, by the nights that assigned them to the current model. So the vectors are kept, keyed by a hash of
the text:
- each fit with embedding topics saves its window's (`models/topics-<run_id>.vectors.npz`, named in the
  store's meta as `topic_vectors`; each fit writes it anew);
- each night that assigns new turns saves theirs (`models/topics-<run_id>.assigned.npz`, listed in meta as
  `topic_vectors_assigned` with the store's newest day when saved), until the next fit, which takes them in;
- the fit on the night it happens takes that night's from memory.
Half precision, 0.75 KB a distinct turn (STORED, below).
The next fit takes from them what it can and embeds the rest. They go when the store drops the model
(`callintel forget` drops all), and are only ever a cache: without them a fit embeds everything, as before.
"""
from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from datetime import date

import numpy as np

from models.topics import EMBEDDING_DIM, EMBEDDING_MODEL, embed

KEY_BYTES = 16
# Kept at half precision: a window's worth at 20,000 calls a night is gigabytes. Every fit takes its vectors
# through it (those it embeds too), so a fit from kept vectors is exactly the fit from scratch; the rounding
# (about 1e-4 of cosine) is far below the int8 maths' own (models/embedding.py).
STORED = np.float16
COPY_ROWS = 65536  # rows taken from a kept file at a time: no temporary copy of a whole window's vectors
Keyed = tuple[np.ndarray, np.ndarray]  # (sorted distinct keys, their vectors)


class Cache:
    """Vectors of a store's last fit and of the nights since (store.meta()), and the file this run's fit saves.

    assigned: this run's own assigned turns (`keyed` pieces), not saved yet.
    """

    def __init__(self, store, run_id: str, assigned: list[Keyed] = ()):
        self.store, self.assigned = store, list(assigned)
        self.name = f"topics-{run_id}.vectors.npz"
        self.saved: str | None = None  # the file name, once saved: the commit of the fit names it in meta
        self.embedded = 0              # distinct texts this fit had to embed
        self.reused = 0                # and those it found kept

    def vectors(self, texts: list[str]) -> Rows:
        """Unit sentence vectors of texts (as models.topics.embed, through STORED), embedding only those not
        kept; then saves this fit's vectors for the next one."""
        unique, first, back = np.unique(_keys(texts), return_index=True, return_inverse=True)
        vectors = np.zeros((len(unique), EMBEDDING_DIM), STORED)
        found = np.zeros(len(unique), bool)
        # One source at a time: a window's vectors can be gigabytes, never hold two windows' worth at once.
        for known_keys, known in self._sources():
            at = np.searchsorted(known_keys, unique)
            hit = at < len(known_keys)
            hit[hit] = known_keys[at[hit]] == unique[hit]
            hit &= ~found
            _take(vectors, known, np.flatnonzero(hit), at)
            found |= hit
        known_keys = known = None  # the last source goes before embedding and saving
        missing = np.flatnonzero(~found)
        if len(missing):
            vectors[missing] = embed([texts[first[i]] for i in missing])
        self.embedded, self.reused = len(missing), int(found.sum())
        self.store.save_model(self.name, lambda path: _write(path, unique, vectors))
        self.saved = self.name
        return Rows(vectors, np.asarray(back).ravel())

    def _sources(self) -> Iterator[Keyed]:
        meta = self.store.meta()
        names = [meta.get("topic_vectors")] + [entry["file"] for entry in meta.get("topic_vectors_assigned") or []]
        for name in filter(None, names):
            yield load(self.store, name)
        yield from self.assigned


def keyed(texts: list[str], vectors: np.ndarray) -> Keyed:
    """Texts' vectors by key, sorted and distinct: what a night keeps of the turns it assigned."""
    keys, first = np.unique(_keys(texts), return_index=True)
    return keys, np.asarray(vectors)[first].astype(STORED)


def save_assigned(store, run_id: str, pieces: list[Keyed], newest: date, window_start: date) -> list[dict]:
    """Save a night's assigned vectors for the next fit; returns meta's new `topic_vectors_assigned`: the
    kept files still inside the window the next fit will see (newest day on or after window_start)."""
    kept = [e for e in store.meta().get("topic_vectors_assigned") or []
            if date.fromisoformat(e["newest"]) >= window_start]
    pieces = [p for p in pieces if len(p[0])]
    if not pieces:
        return kept
    keys, first = np.unique(np.concatenate([k for k, _ in pieces]), return_index=True)
    vectors = np.concatenate([v for _, v in pieces])[first]
    name = f"topics-{run_id}.assigned.npz"
    store.save_model(name, lambda path: _write(path, keys, vectors))
    return kept + [{"file": name, "newest": newest.isoformat()}]


def load(store, name: str) -> Keyed:
    """(sorted keys, their vectors) of a kept file; none when it is missing or not usable."""
    empty = np.zeros(0, f"S{KEY_BYTES}"), np.zeros((0, EMBEDDING_DIM), STORED)
    try:
        with np.load(store.out / "models" / name, allow_pickle=False) as saved:
            keys, vectors = saved["keys"], saved["vectors"]
            if str(saved["model"]) != EMBEDDING_MODEL or vectors.shape != (len(keys), EMBEDDING_DIM):
                return empty
            return keys, vectors
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return empty  # a cache: the fit embeds what it cannot take from it


def _take(vectors: np.ndarray, known: np.ndarray, rows: np.ndarray, at: np.ndarray) -> None:
    """vectors[rows] = known[at[rows]], a block at a time."""
    for start in range(0, len(rows), COPY_ROWS):
        block = rows[start:start + COPY_ROWS]
        vectors[block] = known[at[block]]


class Rows:
    """The vectors of a fit's texts, one row per text, as float32 when read, without a copy per text.

    A window's texts are millions of turns, and a float32 row per turn would be twice the distinct
    half-precision vectors held already. TopicModel reads its vectors a block or a sample at a time
    (rows[a:b], rows[indexes]), which is all this answers, widening only what is read.
    """

    def __init__(self, distinct: np.ndarray, rows: np.ndarray):
        self.distinct, self.rows = distinct, rows
        self.shape = (len(rows), distinct.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, which) -> np.ndarray:
        return self.distinct[self.rows[which]].astype(np.float32)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)


def _keys(texts: list[str]) -> np.ndarray:
    return np.array([_key(t) for t in texts], dtype=f"S{KEY_BYTES}")


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=KEY_BYTES).digest()


def _write(path, keys: np.ndarray, vectors: np.ndarray) -> None:
    with open(path, "wb") as file:  # a file object: np.savez would add ".npz" to the temporary file's name
        np.savez(file, keys=keys, vectors=vectors, model=np.array(EMBEDDING_MODEL))
