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

Example:
    python bench/topic_refit.py                  # 8,000 turns
    python bench/topic_refit.py --turns 20000
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("Example:")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=8000, help="distinct turns in the window (default 8,000)")
    args = parser.parse_args()
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
