"""Topic refit benchmark: a refit that takes the last fit's vectors against one that embeds its whole window.

A window of N distinct customer turns (real DSTC 11 utterances from ../shared/data, each made distinct by a
reference number, as real turns are distinct) is fitted through `pipeline.discover.fit`, as the nightly flow
fits, each in a real store folder:
  1. the first fit: nothing cached, every turn embedded (the baseline: what every refit cost before);
  2. a weekly refit: the window moved on by a quarter (7 of 28 days), so a quarter of its turns are new,
     (a) as if no night had kept their vectors, and (b) after the week's nights assigned them to the model
     (`discover.assign`, as each night does) and kept their vectors (`topic_vectors.save_assigned`);
  3. a refit after a signals change: the same window.
It prints each fit's seconds, the texts it embedded, and its time against the first fit's, measured in the
same run; and checks that the weekly refits find exactly the topics a refit embedding everything finds.

`--memory N` measures instead the peak memory of a refit taking N distinct turns' vectors from a kept file
(random vectors, no embedding: the lookup, the file this fit saves, and the assignment of every turn), in a
fresh process, against the size of N float32 vectors: at 20,000 calls a night a window holds millions.

`--tfidf-memory N` measures the peak memory of a TF-IDF fit (`representation: tfidf`) of N distinct turns, in a
fresh process, against the size its vectors would take dense (N x terms as float32): they are kept sparse.

Example:
    python bench/topic_refit.py                  # 8,000 turns
    python bench/topic_refit.py --turns 20000
    python bench/topic_refit.py --memory 1000000
    python bench/topic_refit.py --tfidf-memory 500000
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import normalize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.topics import EMBEDDING_DIM, TopicModel  # noqa: E402
from pipeline import discover, topic_vectors  # noqa: E402
from pipeline.config import TopicsConfig  # noqa: E402
from pipeline.store import Store  # noqa: E402

DSTC = ROOT.parent / "shared" / "data" / "dstc11-intent-dev" / "utterances.jsonl"


def window(turns: int, first: int) -> pd.DataFrame:
    """Turns first .. first+turns-1 of an endless stream of distinct customer turns, 28 days of them."""
    said = [json.loads(line)["utterance"] for line in DSTC.read_text().splitlines()]
    rows = [{"call_id": f"c{n}", "utt_idx": 0, "speaker": "customer", "call_date": date(2026, 11, 1) +
             timedelta(days=n * 28 // turns), "text": f"{said[n % len(said)]} My reference is {n}."}
            for n in range(first, first + turns)]
    return pd.DataFrame(rows)


def fit(out: Path, run_id: str, utterances: pd.DataFrame) -> tuple[float, int, pd.DataFrame, object]:
    """One fit in the store at out, with the vectors kept there: (seconds, texts embedded, topic per turn, model)."""
    store = Store(out)
    with store.lock():
        cache = topic_vectors.Cache(store, run_id)
        start = time.perf_counter()
        model, _, rows = discover.fit(utterances, utterances.iloc[:0][["call_id", "utt_idx"]], None,
                                      TopicsConfig(), run_id, cache=cache)
        seconds = time.perf_counter() - start
        store.commit(run_id, 1, {}, meta={"topic_vectors": cache.saved, "topic_vectors_assigned": []})
        store.drop_stale_models()
    return seconds, cache.embedded, pd.DataFrame(rows)[["call_id", "utt_idx", "topic_id"]], model


def nights(out: Path, model, turns: pd.DataFrame) -> float:
    """The week's nights assigning their new turns to the model and keeping their vectors; their seconds."""
    store = Store(out)
    with store.lock():
        start = time.perf_counter()
        _, piece = discover.assign(model, turns.to_dict("records"), [], TopicsConfig())
        seconds = time.perf_counter() - start
        newest = turns["call_date"].max()
        since = discover.window_start(newest, TopicsConfig())
        kept = topic_vectors.save_assigned(store, "night", [piece], newest, since)
        store.commit("night", 1, {}, meta={"topic_vectors_assigned": kept})
    return seconds


def kept_turns(n: int) -> list[str]:
    return [f"turn {i} of the window" for i in range(n)]


def seed(out: Path, n: int) -> None:
    """A store whose last fit kept the vectors of kept_turns(n) (random unit vectors)."""
    vectors = normalize(np.random.default_rng(0).standard_normal((n, EMBEDDING_DIM), dtype=np.float32))
    keys, vectors = topic_vectors.keyed(kept_turns(n), vectors)
    store = Store(out)
    with store.lock():
        store.save_model("seed.npz", lambda path: topic_vectors._write(path, keys, vectors))
        store.commit("seed", 0, {}, meta={"topic_vectors": "seed.npz"})


def lookup(out: Path, n: int) -> dict:
    """A refit's use of the kept vectors: take them all, save this fit's file, assign every turn to a model."""
    texts = kept_turns(n)
    store, before = Store(out), _peak_mb()
    with store.lock():
        start = time.perf_counter()
        cache = topic_vectors.Cache(store, "r1")
        vectors = cache.vectors(texts)
        model = TopicModel(max_fit=2000).fit(texts[:2000], lemmas=["x"] * 2000, vectors=vectors[:2000])
        model.assign(texts, lemmas=["x"] * n, vectors=vectors)
        seconds = time.perf_counter() - start
    return {"reused": cache.reused, "seconds": seconds, "before_mb": before, "peak_mb": _peak_mb(),
            "file_mb": (out / "models" / cache.saved).stat().st_size / 1e6}


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not carry over from the parent)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def memory(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="topic-refit-memory-") as tmp:
        seed(Path(tmp) / "out", n)
        done = subprocess.run([sys.executable, __file__, "--memory", str(n), "--kept-store", str(Path(tmp) / "out")],
                              check=True, capture_output=True, text=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    window = n * EMBEDDING_DIM * 4 / 1e6
    print(f"{n:,} distinct kept turns ({window:,.0f} MB as float32): {r['reused']:,} taken from the file in "
          f"{r['seconds']:.1f} s; peak RSS {r['peak_mb']:,.0f} MB ({r['before_mb']:,.0f} MB before), "
          f"{(r['peak_mb'] - r['before_mb']) / window:.2f}x the float32 window; this fit's file {r['file_mb']:,.0f} MB")


def tfidf_fit(n: int) -> dict:
    """A TF-IDF fit of n distinct turns in this process: its seconds, terms, topics and peak memory."""
    texts = window(n, 0)["text"].tolist()
    before, start = _peak_mb(), time.perf_counter()
    model = TopicModel(representation="tfidf").fit(texts)
    return {"seconds": time.perf_counter() - start, "terms": len(model.vectorizer_.vocabulary_),
            "topics": model.n_topics_, "before_mb": before, "peak_mb": _peak_mb()}


def tfidf_memory(n: int) -> None:
    done = subprocess.run([sys.executable, __file__, "--tfidf-memory", str(n), "--in-process"],
                          check=True, capture_output=True, text=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    dense, grew = n * r["terms"] * 4 / 1e6, r["peak_mb"] - r["before_mb"]
    print(f"TF-IDF fit of {n:,} distinct turns: {r['topics']} topics over {r['terms']:,} terms in {r['seconds']:.1f} s;"
          f" peak RSS {r['peak_mb']:,.0f} MB ({r['before_mb']:,.0f} MB before), {grew:,.0f} MB more: "
          f"{grew / dense:.2f}x the {dense:,.0f} MB its vectors would take dense as float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("Example:")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=8000, help="distinct turns in the window (default 8,000)")
    parser.add_argument("--memory", type=int, metavar="N", help="peak memory of a refit from N kept vectors")
    parser.add_argument("--kept-store", help=argparse.SUPPRESS)  # the --memory measurement's own process
    parser.add_argument("--tfidf-memory", type=int, metavar="N", help="peak memory of a TF-IDF fit of N turns")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # --tfidf-memory's own process
    args = parser.parse_args()
    if args.kept_store:
        print(json.dumps(lookup(Path(args.kept_store), args.memory)))
        return
    if args.tfidf_memory and args.in_process:
        print(json.dumps(tfidf_fit(args.tfidf_memory)))
        return
    if args.tfidf_memory:
        tfidf_memory(args.tfidf_memory)
        return
    if args.memory:
        memory(args.memory)
        return
    n, moved = args.turns, args.turns // 4
    with tempfile.TemporaryDirectory(prefix="topic-refit-") as tmp:
        out, assigned = Path(tmp) / "out", Path(tmp) / "assigned"
        first = fit(out, "r1", window(n, 0))
        shutil.copytree(out, assigned)  # the same store, whose nights kept the vectors they assigned
        weekly = fit(out, "r2", window(n, moved))
        again = fit(out, "r3", window(n, moved))
        night_s = nights(assigned, first[3], window(n, moved).iloc[n - moved:])
        kept = fit(assigned, "r2", window(n, moved))
        scratch = fit(Path(tmp) / "scratch", "s1", window(n, moved))  # a new store: nothing cached
    print(f"{n:,} distinct turns in the window; seconds of discover.fit (ratio to the first fit, same run)")
    for name, (seconds, embedded, *_) in (("first fit, nothing cached", first), ("weekly refit, 1/4 new", weekly),
                                          ("weekly refit, nights kept theirs", kept),
                                          ("refit after a signals change", again),
                                          ("weekly refit without the cache", scratch)):
        print(f"  {name:<34} {seconds:7.1f} s  {embedded:7,} embedded  {seconds / first[0]:5.2f}x")
    print(f"  (the week's nights assigning those {moved:,} new turns: {night_s:.1f} s, as they always did)")
    same = weekly[2].equals(scratch[2]) and kept[2].equals(scratch[2])
    print(f"weekly refits with the cache assign every turn as the refit without it: {same}")
    if not same:
        raise SystemExit("the cached refit's topics differ from a refit that embeds everything")


if __name__ == "__main__":
    main()
