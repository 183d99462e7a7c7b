"""Tagging benchmark: the shipped signal library over N utterances vs a spaCy tokenizer-only pass.

Both passes see the same synthetic contact-centre turns in the same run; the target
is tagging <= 2x the tokenizer pass. Memory stays bounded: utterances go through in
batches, and peak RSS is printed.

Example:
    python bench/tagging.py              # 1,000,000 utterances
    python bench/tagging.py --n 100000   # quicker
"""
from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.signals import load_signals  # noqa: E402
from pipeline.tag import Tagger, tag_calls  # noqa: E402

CUSTOMER = [
    "hi I'm calling about my bill", "yeah so the app keeps crashing since the update",
    "I want to cancel my subscription", "I don't want to cancel I just want to know why",
    "this is the third time I've called about this", "can I speak to a manager please",
    "my date of birth is the fourth of March nineteen eighty", "okay", "yes", "no that's fine",
    "I was charged twice this month", "I'd like a refund for the extra charge",
    "honestly I'm really not happy with the service", "the internet drops every evening",
    "sure it's 90210", "I'm thinking of switching to another provider", "thank you so much",
    "um what was the", "I moved house last week and need to update my address",
    "the delivery never arrived", "can you tell me when my contract ends",
]
AGENT = [
    "thank you for calling Skyline Mobile my name is Sam", "this call may be recorded for quality and training",
    "can I take your date of birth to verify the account", "let me put you on a brief hold",
    "thanks for holding", "I understand how frustrating that must be", "I'm sorry for the inconvenience",
    "I can offer you a twenty percent discount for six months", "I'll transfer you to the technical team",
    "is there anything else I can help you with today", "have a great day goodbye", "okay let me check that",
    "I can see the payment went through on the third", "I'll call you back tomorrow morning",
    "right", "so what I'm going to do is raise a ticket", "can you confirm the last four digits of the card",
]
# Most turns in a real call carry no signal: the generator draws a signal-bearing line a quarter of the time.
NEUTRAL_CUSTOMER = [
    "yes that's right", "okay", "mm hmm", "it's on the account under my wife's name", "about two weeks ago",
    "I'm not sure let me check", "the one ending in {n}", "it was on the {d} I think", "yeah go ahead",
    "that's the old address we moved in {m}", "I use it mostly for work", "hang on a second",
    "the router is in the living room", "I tried turning it off and on again", "it's the {m} bill",
    "my son set it up for me", "so what happens now", "right okay", "and how long will that take",
    "I got a text message saying it was sent", "the order number is {n}", "is that the one with the data",
]
NEUTRAL_AGENT = [
    "okay let me just pull that up", "bear with me one moment", "I can see that here", "right",
    "so the account was opened in {m}", "and is that the mobile ending {n}", "perfect", "lovely",
    "I'm just going to check a couple of things", "so what that means is", "the system shows it was sent on the {d}",
    "that should take effect from the next billing cycle", "okay and can you see a green light on the router",
    "so I've added a note to the account", "you'll get a text to confirm", "let me read that back to you",
]
FILLERS = ["", "", "", "so ", "um ", "okay ", "yeah ", "well "]
MONTHS = ["january", "march", "june", "september", "november"]


def utterances(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        speaker = "agent" if i % 2 == 0 else "customer"
        signal_lines, neutral = (AGENT, NEUTRAL_AGENT) if speaker == "agent" else (CUSTOMER, NEUTRAL_CUSTOMER)
        text = rng.choice(FILLERS) + rng.choice(signal_lines if rng.random() < 0.25 else neutral)
        if rng.random() < 0.3:
            text += " " + rng.choice(neutral)
        text = text.format(n=rng.randint(1000, 9999), d=rng.randint(1, 28), m=rng.choice(MONTHS))
        rows.append({"call_id": f"c{i // 40}", "utt_idx": i % 40, "speaker": speaker, "start_s": (i % 40) * 6.0,
                     "text": text, "call_date": "2026-11-09"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="utterances")
    parser.add_argument("--signals", type=Path, default=ROOT / "signals", help="signal library folder")
    parser.add_argument("--batch", type=int, default=50_000, help="utterances per batch (whole calls)")
    args = parser.parse_args()

    rows = utterances(args.n)
    tagger = Tagger(load_signals(args.signals))
    print(f"{args.n:,} utterances, {len(tagger.library.signals)} signals, batches of {args.batch:,}")

    start = time.perf_counter()
    tokens = 0
    for doc in tagger.nlp.tokenizer.pipe((r["text"] for r in rows), batch_size=2000):
        tokens += len(doc)
    base = time.perf_counter() - start
    print(f"spaCy tokenizer only   {base:7.1f} s   {args.n / base:10,.0f} utt/s   ({tokens:,} tokens)")

    start = time.perf_counter()
    hits = 0
    batch = args.batch - args.batch % 40  # whole calls per batch (40 turns each)
    for first in range(0, len(rows), batch):
        chunk = rows[first:first + batch]
        found, _ = tag_calls(tagger, chunk, {r["call_id"]: 300.0 for r in chunk})
        hits += len(found)
    tagged = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"callintel tagging      {tagged:7.1f} s   {args.n / tagged:10,.0f} utt/s   ({hits:,} hits)")
    print(f"ratio tagging / tokenizer: {tagged / base:.2f}x (target <= 2.0)   peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
