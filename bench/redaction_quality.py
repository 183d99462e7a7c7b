"""Redaction quality on the test corpus, and throughput against a trivial regex pass.

Quality: per entity, recall (secrets of the corpus fully covered by a span of their
kind) and precision (spans that overlap a secret of their kind), over
tests/data/redaction_cases.yaml, plus how many near-misses came back unchanged.
Across turns: over the calls of tests/data/redaction_dialogues.yaml (numbers read in
pieces, the other speaker prompting or reading back between), through redact_utterances,
recall is the turns holding PII that come back exactly as expected, precision the changed
turns that were meant to change (to exactly that text), plus near-miss calls unchanged.

Throughput: N synthetic contact-centre utterances (about 5% carry PII), grouped into
calls of 40 turns with word timestamps like the transcribe stage writes, go through
redact_utterances; the baseline is re.sub(r"\\d", "#", text) over the same texts in
the same run. The ratio says what redaction costs next to the cheapest possible pass.

Example:
    python bench/redaction_quality.py            # 100,000 utterances
    python bench/redaction_quality.py --n 20000  # quicker
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.redact import ENTITIES, find_pii, redact_utterances  # noqa: E402

CASES = ROOT / "tests" / "data" / "redaction_cases.yaml"
DIALOGUES = ROOT / "tests" / "data" / "redaction_dialogues.yaml"
PLAIN = [
    "thank you for calling Skyline Mobile my name is Sam", "this call may be recorded for quality and training",
    "hi I'm calling about my bill", "yeah so the app keeps crashing since the update", "okay", "yes", "right",
    "I want to cancel my subscription", "can I speak to a manager please", "let me put you on a brief hold",
    "I was charged twice this month", "I'd like a refund for the extra charge", "thanks for holding",
    "I can see two payments of eighty nine dollars and ninety nine cents on the third of November",
    "I can offer you a twenty percent discount for six months", "is there anything else I can help you with today",
    "the zip code is nine eight one oh three", "I'll call you back at ten thirty tomorrow", "have a great day",
    "the internet drops every evening at about nine", "your order number is 1234567890", "that's $54.99 a month",
    "the last four digits are two two three nine", "can I take your date of birth to verify the account",
]
PII = [
    "the number is four two four two, four two four two, four two four two, four two four two",
    "it's 4111 1111 1111 1111", "sure, it's the fourth of March, nineteen eighty six", "call me on 206 555 0142",
    "it's anna dot brooks at gmail dot com", "my social is 123-45-6789", "expiry oh nine twenty seven",
]


def score(cases: list[dict]) -> tuple[dict, int, int]:
    """Per kind: secrets, covered, spans, true spans; and near-misses unchanged / total."""
    stats = {kind: Counter() for kind in ENTITIES}
    near_ok = near = 0
    for case in cases:
        text, pos, truth = case["text"], 0, []
        for secret in case["expect"]:
            start = text.index(secret["secret"], pos)
            pos = start + len(secret["secret"])
            truth.append((secret["kind"], start, pos))
        spans = find_pii(text, context=case.get("context", ""))
        for kind, start, end in truth:
            stats[kind]["secrets"] += 1
            stats[kind]["covered"] += any(s.kind == kind and s.start <= start and end <= s.end for s in spans)
        for s in spans:
            stats[s.kind]["spans"] += 1
            stats[s.kind]["true"] += any(k == s.kind and a < s.end and s.start < b for k, a, b in truth)
        if not truth:
            near, near_ok = near + 1, near_ok + (not spans)
    return stats, near_ok, near


def score_dialogues(dialogues: list[dict]) -> tuple[Counter, int, int]:
    """Turns to redact, redacted as expected; turns changed, changed as expected; near-miss calls unchanged / total."""
    stats, near_ok, near = Counter(), 0, 0
    for dialogue in dialogues:
        turns = [{"speaker": t[0], "text": t[1]} for t in dialogue["turns"]]
        rows, _ = redact_utterances(turns)
        for turn, row in zip(dialogue["turns"], rows):
            expected = turn[2] if len(turn) > 2 else turn[1]
            stats["secret"] += len(turn) > 2
            stats["covered"] += len(turn) > 2 and row["text"] == expected
            stats["changed"] += row["text"] != turn[1]
            stats["true"] += row["text"] != turn[1] and row["text"] == expected
        if all(len(t) == 2 for t in dialogue["turns"]):
            near, near_ok = near + 1, near_ok + all(r["text"] == t[1] for r, t in zip(rows, dialogue["turns"]))
    return stats, near_ok, near


def calls(n: int, seed: int = 11) -> list[list[dict]]:
    rng = random.Random(seed)
    out = []
    for c in range(0, n, 40):
        turns = []
        for i in range(min(40, n - c)):
            text = rng.choice(PII) if rng.random() < 0.05 else rng.choice(PLAIN)
            words = [{"word": w, "start_s": i * 6 + k * 0.3, "end_s": i * 6 + k * 0.3 + 0.25, "probability": 0.9}
                     for k, w in enumerate(text.split(" "))]
            turns.append({"speaker": ("agent", "customer")[i % 2], "text": text, "words": words})
        out.append(turns)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="synthetic utterances for the throughput run")
    args = parser.parse_args()

    cases = yaml.safe_load(CASES.read_text())["cases"]
    stats, near_ok, near = score(cases)
    print(f"corpus: {len(cases)} cases, {sum(s['secrets'] for s in stats.values())} secrets, {near} near-misses")
    print(f"{'entity':8} {'secrets':>7} {'recall':>7} {'spans':>6} {'precision':>9}")
    for kind, s in stats.items():
        recall = s["covered"] / s["secrets"] if s["secrets"] else float("nan")
        precision = s["true"] / s["spans"] if s["spans"] else float("nan")
        print(f"{kind:8} {s['secrets']:7d} {recall:7.3f} {s['spans']:6d} {precision:9.3f}")
    print(f"near-misses unchanged: {near_ok}/{near}")
    dialogues = yaml.safe_load(DIALOGUES.read_text())["dialogues"]
    d, d_ok, d_near = score_dialogues(dialogues)
    print(f"\nacross turns: {len(dialogues)} calls, {d['secret']} turns holding PII, {d_near} near-miss calls")
    print(f"turn recall {d['covered'] / d['secret']:.3f}   turns changed {d['changed']}   "
          f"turn precision {d['true'] / d['changed'] if d['changed'] else float('nan'):.3f}   "
          f"near-miss calls unchanged: {d_ok}/{d_near}")

    batch = calls(args.n)
    texts = [u["text"] for call in batch for u in call]
    base, took = float("inf"), float("inf")
    for _ in range(3):  # best of three: both passes see the same machine noise
        start = time.perf_counter()
        for text in texts:
            re.sub(r"\d", "#", text)
        base = min(base, time.perf_counter() - start)
        start = time.perf_counter()
        found = Counter()
        for call in batch:
            found += redact_utterances(call)[1]
        took = min(took, time.perf_counter() - start)
    # turns are drawn at random, so a date after "can I take your date of birth" is redacted too
    print(f"\n{len(texts):,} synthetic utterances, {sum(found.values()):,} redactions: {dict(found)}")
    print(f"baseline re.sub(\\d)   {base:6.2f} s  {len(texts) / base:12,.0f} utt/s")
    print(f"redact_utterances     {took:6.2f} s  {len(texts) / took:12,.0f} utt/s   ({took / base:.1f}x baseline)")


if __name__ == "__main__":
    main()
