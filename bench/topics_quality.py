"""Topic quality against public gold labels: the product's topic model next to two baselines.

Data: `../shared/data/dstc11-intent-dev/utterances.jsonl` — 913 customer-service (insurance)
utterances, each with its gold intent (22 intents), from the DSTC11 intent-induction track,
CDLA-Permissive-2.0 (LICENSE.md beside it).

Methods, all measured in this run:
- callintel default: `models.topics.TopicModel()` as shipped (embeddings, k chosen by the model).
- callintel tfidf: the same model with `representation="tfidf"` (no embedding model needed).
- baseline 1, TF-IDF + k-means with k = the gold number of intents (22): given the answer's k,
  its best case. Same lemma TF-IDF features as the product's tfidf representation.
- baseline 2, sentence embeddings + k-means with k chosen by silhouette (cosine) over k = 4..60,
  the track's official baseline; same embeddings as the product.
- reference, TF-IDF + NMF with k = gold: the classic topic model, also given the answer's k.

Scores: NMI, ARI, and ACC = accuracy after a 1:1 Hungarian matching of clusters to intents
(scipy.optimize.linear_sum_assignment; unmatched clusters count as wrong). The product's
outliers (topic -1) count as one more cluster, so they cost ACC. Time is wall time of the
method including its vectors (the embedding model is loaded once, beforehand, timed apart).

`--embedding float32` runs the same with the shipped model file's own float32 maths instead of the int8
maths the product derives from it (models/embedding.py), and prints how close the two's vectors are.

Example:
    python bench/topics_quality.py            # the table
    python bench/topics_quality.py --sweep    # also the default model at other max_distance cuts
    python bench/topics_quality.py --embedding float32
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import embedding  # noqa: E402
from models.embedding import encoder  # noqa: E402
from models.topics import TopicModel, _tfidf, embed  # noqa: E402
from pipeline.topic_text import lemmatise  # noqa: E402

DATA = ROOT.parent / "shared/data/dstc11-intent-dev/utterances.jsonl"
SILHOUETTE_KS = range(4, 61, 2)


def accuracy(gold: np.ndarray, found: np.ndarray) -> float:
    """Best 1:1 matching of clusters to classes (Hungarian), as a share of all items."""
    _, gold = np.unique(gold, return_inverse=True)
    _, found = np.unique(found, return_inverse=True)
    table = np.zeros((found.max() + 1, gold.max() + 1))
    np.add.at(table, (found, gold), 1)
    rows, cols = linear_sum_assignment(-table)
    return table[rows, cols].sum() / len(gold)


def product(texts, representation, max_distance=None):
    model = TopicModel(representation=representation, max_distance=max_distance).fit(texts)
    return model.labels_, f"auto k={model.n_topics_}, {np.mean(model.labels_ == -1):.0%} outliers"


def tfidf_kmeans(texts, k):
    features = _tfidf().fit_transform(lemmatise(texts))
    return KMeans(k, n_init=10, random_state=0).fit_predict(features), f"k={k} (gold)"


def tfidf_nmf(texts, k):
    features = _tfidf().fit_transform(lemmatise(texts))
    weights = NMF(k, init="nndsvda", max_iter=500, random_state=0).fit_transform(features)
    return weights.argmax(axis=1), f"k={k} (gold)"


def embedding_kmeans(texts):
    vectors = embed(texts)
    best = None
    for k in SILHOUETTE_KS:
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(vectors)
        score = silhouette_score(vectors, labels, metric="cosine")
        if best is None or score > best[0]:
            best = (score, k, labels)
    return best[2], f"silhouette k={best[1]} ({SILHOUETTE_KS.start}..{SILHOUETTE_KS.stop - 1})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also run the default model at other max_distance cuts")
    parser.add_argument("--embedding", choices=["int8", "float32"], default="int8",
                        help="the maths the embedding model runs (default int8, as the product)")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    texts, gold = [r["utterance"] for r in rows], np.array([r["intent"] for r in rows])
    k = len(set(gold))
    if args.embedding == "float32":
        int8 = embed(texts)
        encoder.cache_clear()
        embedding.int8_model = lambda source, sha256: source  # the shipped file as it is
        started = time.perf_counter()
        encoder()
        cosine = (embed(texts) * int8).sum(axis=1)
        print(f"float32 maths; vectors against the int8 maths': cosine mean {cosine.mean():.4f}, "
              f"min {cosine.min():.4f}")
    else:
        started = time.perf_counter()
        encoder()
    print(f"{len(texts)} utterances, {k} gold intents ({DATA.name}); "
          f"embedding model loaded in {time.perf_counter() - started:.1f} s\n")
    methods = [
        ("callintel default (embeddings)", lambda: product(texts, "embedding")),
        ("callintel tfidf", lambda: product(texts, "tfidf")),
        ("baseline 1: TF-IDF + k-means", lambda: tfidf_kmeans(texts, k)),
        ("baseline 2: embeddings + k-means", lambda: embedding_kmeans(texts)),
        ("reference: TF-IDF + NMF", lambda: tfidf_nmf(texts, k)),
    ]
    if args.sweep:  # how much the default cut matters (it was chosen on this same set)
        methods += [(f"callintel, max_distance={d}", lambda d=d: product(texts, "embedding", d))
                    for d in (0.35, 0.4, 0.45, 0.5, 0.55, 0.6)]
    print(f"| {'method':<34} | {'k':<32} | {'NMI':>5} | {'ARI':>5} | {'ACC':>5} | {'time s':>6} |")
    print(f"|{'-' * 36}|{'-' * 34}|{'-' * 7}|{'-' * 7}|{'-' * 7}|{'-' * 8}|")
    for name, run in methods:
        started = time.perf_counter()
        found, how = run()
        seconds = time.perf_counter() - started
        print(f"| {name:<34} | {how:<32} | {normalized_mutual_info_score(gold, found):5.3f} "
              f"| {adjusted_rand_score(gold, found):5.3f} | {accuracy(gold, found):5.3f} | {seconds:6.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
