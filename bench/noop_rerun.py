"""No-op nightly re-run benchmark: seconds for a night with nothing new over a store of N stored calls.

Build (once, cached in --workdir): N synthetic calls (bench/text_pipeline.py's generator) arrive over
--days nights, and each night runs the real flow body, `flows.nightly.fn`, with each Prefect task swapped
for its plain function. `--source recordings`: every call is a tiny WAV file named in metadata.csv, and
transcription is replaced by the generator's turns (with word times, as from Whisper), so ingest, hashing,
probing, redaction, tagging, scoring, topics, commits, HTML pages and publishing are the real ones.
`--source transcripts`: one JSON transcript file per call, imported by the real code.
Topics use `representation: tfidf` in the bench's callintel.yaml only to make the build quick: a no-op
night fits and embeds nothing either way.

Measure: one more `flows.nightly.fn` with no new file (Prefect start-up excluded by construction), with
every step of the flow body and every Store call timed, so bottlenecks are visible. Target (issue #8):
<= 5 s for 10,000 stored calls. `--prefect` also times the real `flows.nightly` under
`prefect_test_harness` minus a trivial flow measured in the same harness.

Example:
    python bench/noop_rerun.py                      # 10,000 calls from recordings
    python bench/noop_rerun.py --source transcripts --prefect
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import struct
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from text_pipeline import generate

import flows
from pipeline import tag
from pipeline.runs import transcript_rows
from pipeline.store import Store
from pipeline.transcribe import CallTranscript

STEPS = ["load_config", "load_signals", "Tagger", "load_qa", "close_interrupted", "load_topic_model",
         "_retag_archive", "_rescore_archive", "_import_transcripts", "list_transcripts", "_transcript_ids",
         "plan_recordings", "_transcribe", "_discover_topics", "_write_pages", "store_summary"]
BUILD = 2  # since each recording differs from the others (build 1's were one file's copies)
STORE_METHODS = ["_recover", "manifest", "meta", "read", "read_calls", "calls_without_page", "commit",
                 "publish", "write_summary", "stale_summaries", "forgotten", "model_path"]


def tiny_wav(number: int, seconds: float = 0.1, rate: int = 8000) -> bytes:
    """A valid 16-bit stereo PCM WAV, silent but for its first frame, which holds `number`: every call's file is
    its own recording (copies of one file are one call, and the rest would be set aside). Ingest probes it; the
    bench never decodes it."""
    data = struct.pack("<I", number) + b"\0" * (int(seconds * rate) * 4 - 4)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 2, rate, rate * 4, 4, 16) + b"data" + struct.pack("<I", len(data)) + data)


def with_words(utterances: list[dict]) -> list[dict]:
    """Turns as the ASR stage yields them: words with times spread over the turn, a confidence."""
    out = []
    for u in utterances:
        words = u["text"].split()
        step = (u["end_s"] - u["start_s"]) / max(1, len(words))
        out.append({k: u[k] for k in ("utt_idx", "speaker", "start_s", "end_s", "text")} | {
            "confidence": 0.9, "words": [{"word": w, "start_s": round(u["start_s"] + i * step, 3),
                                          "end_s": round(u["start_s"] + (i + 1) * step, 3), "probability": 0.9}
                                         for i, w in enumerate(words)]})
    return out


class FakeAsr:
    """Stands in for flows._transcribe: the generator's turns for each job, written by the flow's own writer."""

    def __init__(self):
        self.turns: dict[str, list[dict]] = {}

    def __call__(self, cfg, writer, jobs, progress):
        for chunk in flows.batch.chunks(jobs, cfg.commit_every):
            calls, utterances = [], []
            for job in chunk:
                turns = self.turns.pop(job.call_id)
                call, rows = transcript_rows(job, CallTranscript(job.call_id, turns[-1]["end_s"], turns),
                                             writer.run.run_id, "tiny.en")
                calls.append(call)
                utterances += rows
            writer.run.counts["transcribed"] += len(writer.calls(calls, utterances))


def flow_tasks() -> dict:
    """The flow's Prefect tasks by name (plain tasks and the flows._Whole wrappers of whole-table stages)."""
    from prefect import Task

    return {name: value for name, value in vars(flows).items() if isinstance(value, (Task, flows._Whole))}


def plain_tasks() -> None:
    """The flow's Prefect tasks as their plain functions, so nightly.fn runs without Prefect (a task called
    outside a flow run would start a temporary Prefect server)."""
    for name, value in flow_tasks().items():
        setattr(flows, name, value.fn)


def build(args, work: Path, config: Path) -> None:
    recordings, transcripts = work / "recordings", work / "transcripts"
    recordings.mkdir(parents=True, exist_ok=True)
    if args.source == "transcripts":
        transcripts.mkdir(exist_ok=True)
    lines = [f"input: {recordings}", f"out: {work / 'out'}", f"signals: {ROOT / 'signals'}",
             "topics: {representation: tfidf}"]
    if args.source == "transcripts":
        lines.insert(1, f"transcripts: {transcripts}")
    config.write_text("\n".join(lines) + "\n")
    fake = FakeAsr()
    flows._transcribe = fake
    nights: dict = defaultdict(list)
    for call, utterances in generate(10**12, seed=5, days=args.days, calls=args.calls):
        nights[call["call_date"]].append((call, utterances))
    meta_rows = []
    start = time.perf_counter()
    for night, (day, calls) in enumerate(sorted(nights.items())):
        for call, utterances in calls:
            rel = f"{day}/{call['call_id']}"
            if args.source == "recordings":
                (recordings / day.isoformat()).mkdir(exist_ok=True)
                (recordings / f"{rel}.wav").write_bytes(tiny_wav(len(meta_rows)))
                meta_rows.append({"file": f"{rel}.wav", "call_id": call["call_id"],
                                  "started_at": call["started_at"].isoformat(), "agent_id": call["agent_id"],
                                  "queue": call["queue"], "direction": call["direction"]})
                fake.turns[call["call_id"]] = with_words(utterances)
            else:
                (transcripts / day.isoformat()).mkdir(exist_ok=True)
                doc = {k: call[k] for k in ("call_id", "agent_id", "queue", "direction")}
                doc |= {"started_at": call["started_at"].isoformat(), "utterances": [
                    {k: u[k] for k in ("speaker", "start_s", "end_s", "text")} for u in utterances]}
                (transcripts / f"{rel}.json").write_text(json.dumps(doc, indent=1))
        if meta_rows:
            with open(recordings / "metadata.csv", "w", newline="") as fh:
                out = csv.DictWriter(fh, fieldnames=list(meta_rows[0]))
                out.writeheader()
                out.writerows(meta_rows)
        summary = flows.nightly.fn(config=str(config))
        print(f"  night {night + 1}/{len(nights)} {day}: {summary['status']}, "
              f"{summary['counts']['transcribed'] + summary['counts']['imported']} new calls, "
              f"{time.perf_counter() - start:.0f} s so far", flush=True)
    (work / "built.json").write_text(json.dumps(built(args)))


def built(args) -> dict:
    """What a build folder holds; one of another build (an older bench's files) is built again."""
    return {"calls": args.calls, "source": args.source, "days": args.days, "build": BUILD}


def list_folder(folder: Path) -> float:
    start = time.perf_counter()
    for top, _, names in os.walk(folder):
        for name in names:
            os.stat(os.path.join(top, name))
    return time.perf_counter() - start


class Clock:
    """Inclusive seconds and calls per wrapped function, in first-call order, with nesting depth."""

    def __init__(self):
        self.rows: dict[str, list] = {}
        self.depth = 0

    def wrap(self, name: str, fn, by_caller: bool = False):
        def timed(*args, **kwargs):
            key = f"{name} <- {sys._getframe(1).f_code.co_name}" if by_caller else name
            row = self.rows.setdefault(key, [0.0, 0, self.depth])
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                row[0] += time.perf_counter() - start
                row[1] += 1
        return timed


def timed_rerun(config: Path) -> tuple[float, dict, Clock]:
    clock = Clock()
    originals = {name: getattr(flows, name) for name in STEPS if name != "Tagger"}
    for name, fn in originals.items():
        setattr(flows, name, clock.wrap(name, fn))
    tagger_init = tag.Tagger.__init__
    tag.Tagger.__init__ = clock.wrap("Tagger", tagger_init)

    class TimedStore(Store):
        pass

    for method in STORE_METHODS:
        setattr(TimedStore, method, clock.wrap(f"store.{method}", getattr(Store, method), by_caller=True))
    flows.Store = TimedStore
    try:
        start = time.perf_counter()
        summary = flows.nightly.fn(config=str(config))
        total = time.perf_counter() - start
    finally:
        flows.Store = Store
        tag.Tagger.__init__ = tagger_init
        for name, fn in originals.items():
            setattr(flows, name, fn)
    return total, summary, clock


def with_prefect(config: Path, originals: dict) -> None:
    """flows.nightly as Prefect runs it, minus a trivial flow, in one prefect_test_harness."""
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    for name, task in originals.items():
        setattr(flows, name, task)

    @flow(name="trivial")
    def trivial() -> int:
        return 1

    with prefect_test_harness():
        trivial()  # the first flow run of a process pays one-time client set-up: not the nightly's cost
        times = {"trivial": [], "nightly": []}
        for order in (("trivial", "nightly"), ("nightly", "trivial")):
            for name in order:
                start = time.perf_counter()
                trivial() if name == "trivial" else flows.nightly(config=str(config))
                times[name].append(time.perf_counter() - start)
    t, n = min(times["trivial"]), min(times["nightly"])
    print(f"\nwith Prefect (prefect_test_harness, harness start-up excluded): nightly {n:.2f} s, trivial flow "
          f"{t:.2f} s -> nightly minus trivial {n - t:.2f} s (target <= 5 s)   runs: {times}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000, help="stored calls (default 10,000)")
    parser.add_argument("--days", type=int, default=30, help="nights they arrived over (one run each)")
    parser.add_argument("--source", choices=["recordings", "transcripts"], default="recordings")
    parser.add_argument("--workdir", type=Path, help="build folder, kept and reused "
                        "(default /tmp/callintel-noop-<source>-<calls>)")
    parser.add_argument("--rebuild", action="store_true", help="build the store again even if workdir has one")
    parser.add_argument("--repeat", type=int, default=3, help="no-op re-runs; the fastest is reported")
    parser.add_argument("--prefect", action="store_true", help="also time flows.nightly under Prefect")
    args = parser.parse_args()

    work = args.workdir or Path(f"/tmp/callintel-noop-{args.source}-{args.calls}")
    config = work / "callintel.yaml"
    originals = flow_tasks()
    plain_tasks()
    marker = work / "built.json"
    if args.rebuild or not marker.exists() or json.loads(marker.read_text()) != built(args):
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"building {args.calls:,} calls from {args.source} over {args.days} nights in {work} ...")
        start = time.perf_counter()
        build(args, work, config)
        print(f"built in {time.perf_counter() - start:.0f} s")
    store = Store(work / "out")
    files = sum(1 for p in (work / args.source).rglob("*") if p.suffix in (".wav", ".json"))
    parts = sum(map(len, store.manifest().values()))
    pages = sum(1 for _ in (work / "out" / "scorecards").rglob("*.html"))
    size = (work / "out" / "callintel.duckdb").stat().st_size / 2**20
    stored = store.read("calls", ["call_id"]).num_rows
    print(f"store: {work / 'out'}: {files:,} {args.source} files, {stored:,} stored calls, {parts:,} committed part "
          f"files, {pages:,} HTML scorecards, DuckDB {size:,.0f} MB")
    if stored != args.calls:
        sys.exit(f"the build stored {stored:,} calls, not {args.calls:,}: see the failures table in {work / 'out'}; "
                 "--rebuild builds it again")

    listing = min(list_folder(work / args.source) for _ in range(args.repeat))
    runs = [timed_rerun(config) for _ in range(args.repeat)]
    total, summary, clock = min(runs, key=lambda r: r[0])
    counts = summary["counts"]
    print(f"no-op re-run ({args.repeat} runs: {', '.join(f'{r[0]:.2f}' for r in runs)} s; fastest shown): "
          f"found {counts['found']:,}, skipped {counts['skipped']:,}, new "
          f"{counts['transcribed'] + counts['imported']}, status {summary['status']}")
    print(f"{'step (inclusive; indented = inside the one above)':<62}{'seconds':>9}{'calls':>7}")
    for name, (seconds, calls, depth) in clock.rows.items():
        if seconds >= 0.001 or depth == 0:
            print(f"{'  ' * depth + name:<62}{seconds:9.3f}{calls:7}")
    top = sum(s for s, _, d in clock.rows.values() if d == 0)
    print(f"{'  (flow body outside the steps above)':<62}{total - top:9.3f}")
    print(f"{'total: flows.nightly body, no Prefect':<62}{total:9.3f}   target <= 5 s: "
          f"{'met' if total <= 5 else 'MISSED'}")
    print(f"{'baseline: os.walk + stat of the ' + args.source + ' folder':<62}{listing:9.3f}   ratio "
          f"{total / listing:.1f}x (listing every file; a night lists only folders that changed since their calls "
          "were stored, see pipeline/listing.py)")
    if counts["transcribed"] + counts["imported"] or summary["failures"]:
        sys.exit(f"not a no-op night: {counts['transcribed'] + counts['imported']} new calls, "
                 f"{len(summary['failures'])} failures (first: {(summary['failures'] or [{}])[0].get('error')})")
    if args.prefect:
        with_prefect(config, originals)


if __name__ == "__main__":
    main()
