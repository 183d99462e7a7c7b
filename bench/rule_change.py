"""Rule-change night benchmark: a new rubric version re-scores the whole archive (a new signal: re-tags it, then
re-scores it). Seconds and peak memory by size.

For each archive size (calls), in a fresh folder: the calls of bench/text_pipeline.py's generator are written
as transcript JSON files and imported by the real nightly flow (the first night: the baseline, timed in the
same run), then the rubric's version is bumped (--change signals: a signal added; flags: a flag rule) and the flow runs
again over the same folders: every stored call is re-scored (re-tagged first) from stored tables and its HTML
scorecard rendered again and rewritten. Each night runs in
a process of its own (`flows.run_nightly`, Prefect's temporary server included), which reports its step
times and its peak memory (the flow's process, where the archive's rows are held).

What to look for: the rule-change night's time grows with the archive (it re-scores every call), its peak
memory does not (the archive is taken a few days at a time: pipeline/archive.py), and its re-score and pages
steps use every core.

Example:
    python bench/rule_change.py                        # 20,000 and 60,000 calls, 500 a day
    python bench/rule_change.py --calls 5000 --workers 1
    python bench/rule_change.py --calls 60000 --change signals
    python bench/rule_change.py --calls 20000 --change flags   # most pages come out the same: left alone
    python bench/rule_change.py --calls 20000 --change redaction   # the pass an upgrade of the redaction costs
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

NIGHT = """
import json, resource, sys
sys.path.insert(0, {root!r})
import flows
summary = flows.run_nightly(input={empty!r}, transcripts_dir={tx!r}, out={out!r}, signals={signals!r},
                            workers={workers}, progress=False)
# the flow's process only: a child's ru_maxrss counts the parent's pages it was forked with, so is no measure
peak = lambda who: resource.getrusage(who).ru_maxrss / 1024
print(json.dumps({{"seconds": summary["seconds"], "rescored": summary["counts"]["rescored"],
                   "retagged": summary["counts"]["retagged"],
                   "pages": [n for n in summary["notes"] if n.startswith("scorecard pages:")],
                   "imported": summary["counts"]["imported"], "failures": len(summary["failures"]),
                   "peak_mb": peak(resource.RUSAGE_SELF)}}))
"""


def write_archive(folder: Path, calls: int, days: int) -> int:
    """`calls` synthetic calls over `days` days as transcript files; returns the utterances written."""
    from text_pipeline import generate, transcript_doc

    folder.mkdir(parents=True)
    utterances = 0
    for call, turns in generate(10**9, calls=calls, days=days):
        (folder / f"{call['call_id']}.json").write_text(json.dumps(transcript_doc(call, turns)))
        utterances += len(turns)
    return utterances


def night(work: Path, signals: Path, workers: int) -> dict:
    code = NIGHT.format(root=str(ROOT), empty=str(work / "empty"), tx=str(work / "tx"), out=str(work / "out"),
                        signals=str(signals), workers=workers)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"night failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(calls: int, days: int, workers: int, change: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="rule-change-") as tmp:
        work = Path(tmp)
        utterances = write_archive(work / "tx", calls, days)
        (work / "empty").mkdir()
        signals = work / "signals"
        shutil.copytree(ROOT / "signals", signals)
        first = night(work, signals, workers)
        CHANGES[change](signals)
        second = night(work, signals, workers)
    retagged = first["imported"] if change == "signals" else 0
    rescored = 0 if change == "redaction" else first["imported"]
    if (second["rescored"], second["retagged"]) != (rescored, retagged) or first["failures"] or \
            second["failures"]:
        raise SystemExit(f"unexpected counts: first night {first}, rule-change night {second}")
    return {"calls": calls, "utterances": utterances, "first": first, "change": second, "what": change}


def bump_rubric(signals: Path) -> None:
    rubric = signals / "rubric.yaml"
    text = rubric.read_text()
    if "\n  version: 1\n" not in text:
        raise SystemExit(f"{rubric}: no 'version: 1' line to bump")
    rubric.write_text(text.replace("\n  version: 1\n", "\n  version: 2\n"))


def add_signal(signals: Path) -> None:
    (signals / "bench_extra.yaml").write_text("signals:\n  - id: bench_account\n    phrases: [account]\n")


def add_flag_rule(signals: Path) -> None:
    flags = signals / "flags.yaml"
    flags.write_text(flags.read_text().rstrip() + "\n\n  - id: bench_billing\n    severity: low\n"
                     "    description: Billing question\n    when: {signal: billing_question}\n")


def older_redaction(signals: Path) -> None:
    """As if an earlier release had redacted the store: the night redacts every stored call again (finding
    nothing more: the same rules), which is the pass an upgrade costs before any re-tag it leads to."""
    sys.path.insert(0, str(ROOT))
    from pipeline.store import Store

    store = Store(signals.parent / "out")
    with store.lock():
        store.commit("bench", 1, {}, meta={"redaction_hash": "an earlier release"})


CHANGES = {"rubric": bump_rubric, "signals": add_signal, "flags": add_flag_rule, "redaction": older_redaction}


def report(r: dict) -> None:
    first, change = r["first"], r["change"]
    total = lambda s: sum(s.values())  # noqa: E731
    print(f"\n{r['calls']:,} calls ({r['utterances']:,} utterances)")
    print(f"  first night (import):  {total(first['seconds']):7.1f} s  peak {first['peak_mb']:6.0f} MB")
    print(f"  {r['what'] + '-change night:':<21}  {total(change['seconds']):7.1f} s  peak {change['peak_mb']:6.0f} MB  "
          f"= {total(change['seconds']) / total(first['seconds']):.2f}x the first night")
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in change["seconds"].items() if v >= 0.05)
    print(f"    steps: {steps}")
    per_call = 1000 * (change["seconds"].get("re-tag and re-score", 0) + change["seconds"].get("scorecard pages", 0))
    print(f"    re-score + pages: {per_call / r['calls']:.2f} ms a call; "
          + "; ".join(change.get("pages") or ["scorecard pages: all written"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python bench/rule_change.py --calls 20000,60000",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="20000,60000", help="archive sizes in calls, comma-separated")
    parser.add_argument("--per-day", type=int, default=500, help="calls a day: the archive spans calls/per-day days")
    parser.add_argument("--workers", type=int, default=0, help="processes (default: every core)")
    parser.add_argument("--change", choices=sorted(CHANGES), default="rubric",
                        help="what changes before the second night: the rubric's version (default), a new "
                             "signal, a new flag rule, or the redaction rules (stored text redacted again)")
    args = parser.parse_args()
    results = [measure(int(n), max(1, int(n) // args.per_day), args.workers or None, args.change)
               for n in args.calls.split(",")]
    for r in results:
        report(r)
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"\narchive {b['calls'] / a['calls']:.1f}x larger: {args.change}-change night "
              f"{sum(b['change']['seconds'].values()) / sum(a['change']['seconds'].values()):.2f}x the time, "
              f"peak memory {b['change']['peak_mb'] / a['change']['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
