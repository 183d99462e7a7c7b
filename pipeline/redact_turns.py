"""Which turns of a call pipeline.redact searches joined.

A *block* is one speaker's consecutive turns, the other speaker silent or only
backchannelling ("mhm", "okay") between: Whisper ends a turn at each pause, so a number
read over several turns is only whole in the block's turns joined.
"""
from __future__ import annotations

BACKCHANNEL = set("ok okay mhm mm hmm mmhmm mm-hmm uh-huh uh huh yes yeah yep yup right sure go on ahead got it "
                  "alright thanks thank you great perfect".split())
PUNCTUATION = str.maketrans(dict.fromkeys(",.;:!?()[]/\"'\u2026-", " "))


def turn_blocks(utterances: list[dict], texts: list[str]) -> list[list[int]]:
    """Runs of one speaker's turns; the other speaker's pure backchannel ("mhm", "okay") between is skipped."""
    blocks, block = [], []
    for i, utterance in enumerate(utterances):
        if block and utterance.get("speaker") == utterances[block[-1]].get("speaker"):
            block.append(i)
        elif block and len(texts[i]) < 30 and set(_words(texts[i])) <= BACKCHANNEL:
            continue
        else:
            blocks.append(block)
            block = [i]
    return [b for b in blocks + [block] if len(b) > 1]


def _words(text: str) -> list[str]:
    return text.lower().translate(PUNCTUATION).split()
