"""Signal quality end to end: demo audio -> the nightly pipeline -> signal_hits, against the scripts.

Truth is data/demo_script.yaml: each line's signals. ASR turns do not map one-to-one to
script lines, so matching is by time: a scripted (line, signal) is found when a hit of that
signal lies in an utterance overlapping the line; a hit is correct when its utterance
overlaps a line scripted with that signal. Also printed: the same at call level
(does the call have the signal at all), which is what categories and QA use.

Example:
    python bench/signals_quality.py                  # runs the pipeline into bench/out/signals
    python bench/signals_quality.py --out data/out   # evaluates an existing output folder
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]


def truth_lines() -> list[dict]:
    script = yaml.safe_load((ROOT / "data/demo_script.yaml").read_text())
    rows = []
    for call in script["calls"]:
        times = json.loads((ROOT / f"data/demo_transcripts/{call['call_id']}.json").read_text())["utterances"]
        for line, t in zip(call["lines"], times):
            rows += [{"call_id": call["call_id"], "signal_id": s, "start_s": t["start_s"], "end_s": t["end_s"]}
                     for s in line.get("signals", [])]
    return rows


def overlaps(a_start, a_end, b_start, b_end, slack=0.3) -> bool:
    return a_start <= b_end + slack and b_start <= a_end + slack


def evaluate(out: Path) -> None:
    with duckdb.connect(str(out / "callintel.duckdb"), read_only=True) as con:
        hits = con.sql("SELECT h.call_id, h.signal_id, u.start_s, u.end_s FROM signal_hits h "
                       "JOIN utterances u USING (call_id, utt_idx)").df().to_dict("records")
    truth = truth_lines()
    signals = sorted({t["signal_id"] for t in truth} | {h["signal_id"] for h in hits})
    print(f"{'signal':<24}{'scripted':>9}{'hits':>6}{'recall':>8}{'precision':>10}   calls: recall precision")
    totals = [0, 0, 0, 0]
    for sig in signals:
        t = [x for x in truth if x["signal_id"] == sig]
        h = [x for x in hits if x["signal_id"] == sig]
        found = sum(any(y["call_id"] == x["call_id"] and overlaps(x["start_s"], x["end_s"], y["start_s"], y["end_s"])
                        for y in h) for x in t)
        right = sum(any(y["call_id"] == x["call_id"] and overlaps(x["start_s"], x["end_s"], y["start_s"], y["end_s"])
                        for y in t) for x in h)
        tc, hc = {x["call_id"] for x in t}, {x["call_id"] for x in h}
        totals = [totals[0] + found, totals[1] + len(t), totals[2] + right, totals[3] + len(h)]
        print(f"{sig:<24}{len(t):>9}{len(h):>6}{_ratio(found, len(t)):>8}{_ratio(right, len(h)):>10}"
              f"   {_ratio(len(tc & hc), len(tc)):>12} {_ratio(len(tc & hc), len(hc)):>9}")
    print(f"{'all signals (micro)':<24}{totals[1]:>9}{totals[3]:>6}{_ratio(totals[0], totals[1]):>8}"
          f"{_ratio(totals[2], totals[3]):>10}")


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="existing output folder to evaluate (default: run the pipeline)")
    args = parser.parse_args()
    out = args.out
    if out is None:
        out = ROOT / "bench/out/signals"
        callintel = Path(sys.executable).with_name("callintel")
        subprocess.run([str(callintel), "run", "--input", str(ROOT / "data/demo"), "--out", str(out), "--quiet",
                        "--signals", str(ROOT / "signals")], check=False)
    evaluate(out)


if __name__ == "__main__":
    main()
