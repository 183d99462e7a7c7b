"""QA quality end to end: demo audio -> the nightly pipeline -> scorecards and flags, against the scripts.

Truth is data/demo_truth.py: per call, each default-rubric criterion's result, the score and
auto-fail, and the flags the default rules must raise, all from the script's annotations.
The `ended_negative` flag depends on sentiment, which the script does not annotate: its truth
is VADER on the script's own words (the model, not our pipeline).

Prints per call: expected vs got score, auto-fail, criteria that differ, flags that differ;
then the share of calls scored exactly right (same pct, pass/fail and auto-fail) and with
exactly the right flags. Runs the same on the ready-made transcripts as a control.

Example:
    python bench/qa_quality.py                    # runs the pipeline on audio into bench/out/qa
    python bench/qa_quality.py --out data/out     # evaluates an existing output folder (audio run)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import duckdb
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "data"))
import demo_truth  # noqa: E402


def sentiment_end(call_id: str) -> float:
    vader = SentimentIntensityAnalyzer()
    customer = [line["text"] for line in demo_truth.lines(call_id) if line["speaker"] == "customer"]
    n = min(3, max(1, len(customer) // 3))
    return sum(vader.polarity_scores(t)["compound"] for t in customer[-n:]) / n


def run(out: Path, *source: str) -> None:
    callintel = Path(sys.executable).with_name("callintel")
    subprocess.run([str(callintel), "run", *source, "--out", str(out), "--quiet"], check=False,
                   stdout=subprocess.DEVNULL)


def evaluate(out: Path, label: str) -> tuple[float, float]:
    with duckdb.connect(str(out / "callintel.duckdb"), read_only=True) as con:
        cards = {r[0]: r[1:] for r in con.execute(
            "SELECT call_id, pct, passed, auto_failed FROM current_scorecards").fetchall()}
        items = {(r[0], r[1]): r[2] for r in con.execute(
            "SELECT i.call_id, criterion_id, result FROM scorecard_items i JOIN current_scorecards USING "
            "(call_id, rubric_id, rubric_version)").fetchall()}
        flags = con.execute("SELECT call_id, flag_id FROM flags").fetchall()
    exact_score = exact_flags = 0
    print(f"\n{label}: {out}")
    print(f"{'call':8} {'expected':>18} {'got':>18}  differences")
    for call_id in demo_truth.call_ids():
        want = demo_truth.scorecard(call_id)
        got = cards.get(call_id)
        got_card = dict(zip(("pct", "passed", "auto_failed"), got)) if got else None
        crit = {c: r for c, r in demo_truth.criteria(call_id).items() if items.get((call_id, c)) != r}
        want_flags = demo_truth.flags(call_id, sentiment_end(call_id))
        got_flags = {f for c, f in flags if c == call_id}
        exact_score += got_card == want
        exact_flags += got_flags == want_flags
        diffs = [f"{c}: want {r}, got {items.get((call_id, c))}" for c, r in crit.items()]
        diffs += [f"flag missing {f}" for f in sorted(want_flags - got_flags)]
        diffs += [f"flag extra {f}" for f in sorted(got_flags - want_flags)]
        show = lambda c: "—" if c is None else f"{c['pct']:5.1f}% {'AF' if c['auto_failed'] else ('P' if c['passed'] else 'F')}"  # noqa: E731
        print(f"{call_id:8} {show(want):>18} {show(got_card):>18}  {'; '.join(diffs) or 'exact'}")
    n = len(demo_truth.call_ids())
    print(f"scored exactly right: {exact_score}/{n} = {exact_score / n:.2f}; flags exactly right: "
          f"{exact_flags}/{n} = {exact_flags / n:.2f}")
    return exact_score / n, exact_flags / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="existing output folder of an audio run (default: run it)")
    args = parser.parse_args()
    control = ROOT / "bench/out/qa_transcripts"
    run(control, "--transcripts", str(ROOT / "data/demo_transcripts"), "--input", str(ROOT / "bench/out/none"))
    evaluate(control, "control: ready-made transcripts")
    out = args.out
    if out is None:
        out = ROOT / "bench/out/qa"
        run(out, "--input", str(ROOT / "data/demo"))
    evaluate(out, "end to end from audio (Whisper tiny.en)")


if __name__ == "__main__":
    main()
