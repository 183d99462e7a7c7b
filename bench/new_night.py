"""Nightly-cost benchmark: does a night with N new calls cost O(N), however many calls are stored already?

Nights of the same size (--per-night calls, one transcript JSON file each, in a folder per day as a recording
system writes them) arrive one after another into one out folder, and each is run by the real flow body,
`flows.nightly.fn`, with the Prefect tasks as their plain functions (Prefect's start-up, the same every night,
is left out). Everything else is the real night: listing the transcripts folder, skipping stored files,
import on every core, redact, tag, score, topics (TF-IDF, so the weekly refits are quick), pages, commits,
compaction and publishing the DuckDB file. The archive grows by N calls a night and the transcripts folder
keeps every night's files, so whatever a night does per stored call or per file ever seen shows as growth.

Measure: each night's wall time and its steps (the run summary's `seconds`; "start" is the rest: loading the
configuration and models, listing the folder, reading which calls are stored) against the calls stored
before it. Baseline (same run): the early nights (2-11; night 1 also fits the first topic model). The ratio
of the late nights to the early ones is ~1 when a night costs O(its own calls) (target, issue #8), and would
be about the archive's growth between them if it cost O(all calls so far); since single nights are noisy on a
shared machine, the growth is also fitted by least squares over every night and set against what a night
that redid every stored call would add. Nights that refit the topic model (every `topics.refit_days`) are
shown apart: a refit costs O(its window), not O(archive).
Prints a table per ten nights and saves a plot (bench/results/new_night.png, the figures beside it as .json).

Example:
    python bench/new_night.py                          # 60 nights of 500 calls
    python bench/new_night.py --nights 120 --per-night 300
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from noop_rerun import plain_tasks
from text_pipeline import FIRST_DAY, generate, write_transcripts

STEPS = ["re-tag and re-score", "transcripts", "topics", "scorecard pages", "compact and publish"]
EARLY = range(2, 12)  # nights 2-11: the baseline (night 1 also fits the first topic model)


def nights_of_calls(nights: int, per_night: int, seed: int) -> list[list[tuple[dict, list]]]:
    """The generator's calls, grouped by day: `per_night` calls on each of `nights` days, the last yesterday
    (a call that starts in the future is refused as a clock error)."""
    by_day, shift = defaultdict(list), date.today() - timedelta(days=nights) - FIRST_DAY
    for call, utterances in generate(10**12, seed=seed, days=nights, calls=nights * per_night):
        call |= {"started_at": call["started_at"] + shift, "call_date": call["call_date"] + shift}
        by_day[call["call_date"]].append((call, utterances))
    return [by_day[day] for day in sorted(by_day)]


def run_nights(work: Path, nights: list, workers: int) -> list[dict]:
    import flows

    transcripts = work / "transcripts"
    config = work / "callintel.yaml"
    config.write_text(f"input: {work / 'recordings'}\ntranscripts: {transcripts}\nout: {work / 'out'}\n"
                      f"signals: {ROOT / 'signals'}\ntopics: {{representation: tfidf}}\n"
                      f"runner: {{workers: {workers}}}\n")
    (work / "recordings").mkdir()
    rows, stored = [], 0
    for number, calls in enumerate(nights, start=1):
        day = calls[0][0]["call_date"]
        write_transcripts([SimpleNamespace(call=c, utterances=u) for c, u in calls], transcripts / day.isoformat())
        start = time.perf_counter()
        summary = flows.nightly.fn(config=str(config), progress=False)
        total = time.perf_counter() - start
        if summary["status"] != "ok" or summary["counts"]["imported"] != len(calls):
            sys.exit(f"night {number} ({day}): {summary['status']}, {summary['counts']['imported']} of {len(calls)} "
                     f"calls stored; the bench measures whole nights: {summary['failures'][:1]}")
        steps = {step: summary["seconds"].get(step, 0.0) for step in STEPS}
        refit = any(note.startswith("topic model refit") for note in summary["notes"])
        rows.append({"night": number, "day": day.isoformat(), "stored_before": stored, "total": total,
                     "start": total - sum(steps.values()), **steps, "refit": refit})
        print(f"  night {number:3}/{len(nights)} {day}: {len(calls)} new over {stored:,} stored, {total:.2f} s"
              f"{' (topic refit)' if refit else ''}", flush=True)
        stored += len(calls)
    return rows


def table(rows: list[dict]) -> None:
    print(f"\n{'nights':>8}{'stored before':>15}{'median s':>10}{'start':>8}{'import':>8}{'pages':>8}"
          f"{'publish':>9}   (nights without a topic refit; steps: median seconds)")
    for first in range(0, len(rows), 10):
        group = [r for r in rows[first:first + 10] if not r["refit"]]
        if not group:
            continue
        med = {k: statistics.median(r[k] for r in group) for k in ("total", "start", "transcripts",
                                                                  "scorecard pages", "compact and publish")}
        print(f"{first + 1:>3}-{first + len(rows[first:first + 10]):<4}{group[0]['stored_before']:>15,}"
              f"{med['total']:10.2f}{med['start']:8.2f}{med['transcripts']:8.2f}{med['scorecard pages']:8.2f}"
              f"{med['compact and publish']:9.2f}")
    refits = [r for r in rows if r["refit"]]
    if refits:
        print("topic refit nights (O(window)): " + ", ".join(
            f"night {r['night']} {r['total']:.1f} s (topics {r['topics']:.1f})" for r in refits))


def verdict(rows: list[dict], per_night: int) -> None:
    """Early against late nights, and the least-squares growth of a night's time with the archive."""
    import numpy as np

    plain = [r for r in rows if not r["refit"] and r["night"] > 1]
    early = [r for r in plain if r["night"] in EARLY]
    late = [r for r in plain if r["night"] > len(rows) - 10]
    if not early or not late:
        sys.exit("too few nights without a refit to compare: run more --nights")
    e, l_ = statistics.median(r["total"] for r in early), statistics.median(r["total"] for r in late)
    grown = statistics.median(r["stored_before"] for r in late) / statistics.median(r["stored_before"] for r in early)
    print(f"\nearly nights (2-11, the baseline) median {e:.2f} s; last 10 nights {l_:.2f} s: ratio {l_ / e:.2f}x, "
          f"while the archive grew {grown:.1f}x")
    for step in ["start"] + STEPS:
        a, b = (statistics.median(r[step] for r in group) for group in (early, late))
        if max(a, b) >= 0.05:
            print(f"  {step:<22} {a:6.2f} s -> {b:6.2f} s ({b / a if a else float('inf'):.2f}x)")
    slope = np.polyfit([r["stored_before"] for r in plain], [r["total"] for r in plain], 1)[0] * 10_000
    whole = e / per_night * 10_000  # what 10,000 more stored calls would add if a night redid every stored call
    print(f"a night's growth (least squares over {len(plain)} nights without a refit): {slope:+.2f} s per 10,000 "
          f"stored calls, against {whole:.0f} s if a night cost O(all calls so far): {slope / whole:.1%} of it "
          f"(target: O(its own calls), ~0%)")


def plot(rows: list[dict], path: Path, per_night: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for refit, style, label in ((False, "o", "night"), (True, "x", "night with a topic refit (O(window))")):
        pick = [r for r in rows if r["refit"] == refit and r["night"] > 1]
        ax.plot([r["stored_before"] for r in pick], [r["total"] for r in pick], style, label=label, alpha=0.7)
    plain = [r for r in rows if not r["refit"] and r["night"] > 1]
    ax.plot([r["stored_before"] for r in plain], [r["start"] for r in plain], ".", label="start (listing, stored ids)")
    ax.plot([r["stored_before"] for r in plain], [r["compact and publish"] for r in plain], ".",
            label="compact and publish")
    ax.set_xlabel("calls stored before the night")
    ax.set_ylabel("seconds")
    ax.set_ylim(bottom=0)
    ax.set_title(f"A night of {per_night:,} new calls against the archive it joins")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nights", type=int, default=60, help="nights, one a day (default 60)")
    parser.add_argument("--per-night", type=int, default=500, help="new calls a night (default 500)")
    parser.add_argument("--workers", type=int, default=None, help="runner.workers (default: one per core)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "new_night.png")
    args = parser.parse_args()
    if args.nights < 21:
        parser.error("--nights must be at least 21: ten early nights, ten late ones, and night 1's first fit")
    plain_tasks()
    nights = nights_of_calls(args.nights, args.per_night, args.seed)
    work = Path(tempfile.mkdtemp(prefix="callintel-new-night-"))
    try:
        print(f"{args.nights} nights of {args.per_night:,} calls into {work}", flush=True)
        rows = run_nights(work, nights, args.workers or os.cpu_count() or 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table(rows)
    verdict(rows, args.per_night)
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, args.plot, args.per_night)
    (args.plot.with_suffix(".json")).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
