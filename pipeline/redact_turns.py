"""Which turns of a call pipeline.redact searches joined: how a card is read out on a call.

A caller reads a card in pieces, a pause ending each turn, and the agent answers every
piece: "mhm", "and the next four?", "and then?", "4111, go on". A *block* is one
speaker's turns with, between them, only the other speaker's short turns (< 60
characters) that say nothing of their own:
- backchannel: "mhm", "okay", "yes", "go ahead";
- prompts for more digits: "and the rest?", "the next four", "and then?", "keep going",
  "sorry, again?", "and the rest of the card?" (naming the card only when the block
  reads one; "four" after next/last/first/other is a count, not a digit);
- read-backs: runs of 2+ digits the block has already said ("4111?", "mhm, 4111, go on");
- in the middle of a card (a card named within CUE_TURNS, the block's last turn saying a
  number, fewer than 16 digits so far): any remark that says no number and names nothing
  but the card ("Oh sorry, you cut out there.", "Is that the Visa?").
Anything else ends the block: a cue for something else ("and the expiry?", which must
decide what the next digits are), "and how many handsets?", a digit not read back, a
money sign. A turn read through is still its speaker's: it opens their next block.

redact joins a block's turns with newlines, so digits read across the pauses form one
run, and keeps only the spans that cross a turn. When a card was asked for or named
(just before the block, between its turns or in them), it searches the block a second
time with the backchannel and prompt words before a turn's first digit and after its
last blanked ("yes, and 1111 1111", "the last four is 1111"), and turns of nothing else
("yes"), so they do not cut the run. A card, phone or SSN found across turns also takes
the digit runs of the turns between its pieces that repeat its digits (read-backs).
"""
from __future__ import annotations

import re
from typing import Callable, Iterator

from pipeline.redact_spans import READ_BACK_KINDS
from pipeline.spoken import (FILLERS, MONTHS, NUMBER_WORDS, ORDINALS, SPOKEN_AT, UNITS, Tokens, letter_words, runs,
                             spell)

BACKCHANNEL = set("ok okay mhm mhmm mm hm hmm mmhmm mm-hmm uh-huh uh huh um hum yes yeah yep yup right all sure go "
                  "on ahead got it gotcha alright thanks thank you great perfect cool fine understood noted ready sir "
                  "ma'am maam madam say hang moment sec second".split())
# No cue word here ("expiry", "order", "phone"...): a turn naming what comes next starts a block of its own
PROMPTS = set("and the then next last first final rest remaining more other others after that that's what what's "
              "whats comes keep going carry continue please so of number numbers digits ones sorry again pardon was "
              "is correct".split())
COUNTED = {"next", "last", "first", "final", "other", "remaining"}  # "the next four": four digits, not a 4
WAITS = {"moment", "sec", "second", "minute", "min", "mo", "more"}  # "one moment", "one more time"
CARD_WORDS = {"card", "long"}  # "and the rest of the card?" goes on reading a card, but ends any other block
PLAIN = BACKCHANNEL | PROMPTS | FILLERS | CARD_WORDS
BETWEEN_WORDS = PLAIN | NUMBER_WORDS
BETWEEN_CHARS = 60  # a longer turn says something of its own
CUE_TURNS = 4  # turns before a block where the agent's "can I take the card number?" may be
EDGE = BACKCHANNEL | PROMPTS | FILLERS | {"it's", "its", "it"}  # blanked at a turn's edges; never a cue word
KEEP = set("$£€%+(")  # "$" before a run or "%" after it says what it is; "+44", "(206)" belong to a phone
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")  # the words Tokens reads
DIGIT = re.compile(r"\d")
MONEY = re.compile(r"[$£€%]")
SPAN_WORDS = NUMBER_WORDS | MONTHS | ORDINALS.keys()  # the words a number or a date may begin or end with


def turn_blocks(utterances: list[dict], texts: list[str], has_card_cue: Callable[[str], bool],
                has_other_cue: Callable[[str], bool], numeric: list[bool]) -> list[list[int]]:
    """Indices of the turns of each block of two or more turns (see the module docstring); a block reads a card
    when has_card_cue is true of one of its turns or of the CUE_TURNS turns before it. has_other_cue: does a turn
    name a number other than a card's (a remark that does, "and the expiry?", ends a block even while a card is
    read; "is that the Visa?" does not); numeric: which turns may say a number."""
    blocks, block, skipped, said, cued = [], [], [], {}, {}

    def block_said() -> str:
        for k in block:
            if k not in said:
                said[k] = digits(texts[k])
        return "".join(said[k] for k in block)

    def reading_card() -> bool:
        for k in range(max(block[0] - CUE_TURNS, 0), block[-1] + 1):
            if k not in cued:
                cued[k] = has_card_cue(texts[k])
            if cued[k]:
                return True
        return False

    def remark_in_card(text: str) -> bool:
        """A short remark of the other speaker in the middle of a card ("sorry, could you repeat that?")."""
        # the block's last turn says a number, and so far fewer digits than a card has: the remark falls in the
        # middle of one
        return numeric[block[-1]] and reading_card() and 0 < len(block_said()) < 16 and not has_other_cue(text)

    for i, utterance in enumerate(utterances):
        speaker = utterance.get("speaker")
        if block and speaker == utterances[block[-1]].get("speaker"):
            block.append(i)
            skipped = []
        elif block and _between(texts[i], block_said, reading_card, remark_in_card):
            skipped.append(i)
        else:
            blocks.append(block)
            # turns read through are still their speaker's: "go 49" before "4111 4242" is read with it
            block, skipped = [k for k in skipped if utterances[k].get("speaker") == speaker] + [i], []
    return [b for b in blocks + [block] if len(b) > 1]


def may_cross(block: list[int], texts: list[str]) -> bool:
    """False for a block no span can cross a turn of, so it need not be searched joined (most blocks).

    A span crossing turns starts in one turn and ends in a later one. A number's or a date's first and last
    words are digits, number words, ordinals or months, so two of its turns say one; only an e-mail may begin
    with a plain word ("anna" / "at gmail dot com"), and it needs an "at" or "@".
    """
    said = 0
    for i in block:
        text = texts[i]
        if "@" in text or SPOKEN_AT.search(text):
            return True
        if DIGIT.search(text) or not SPAN_WORDS.isdisjoint(letter_words(text)):
            said += 1
            if said == 2:
                return True
    return False


def cross_turn(block: list[int], texts: list[str], find: Callable[[str, str], list], context: str,
               card_cue: bool) -> Iterator[tuple[int, str, int, int, bool]]:
    """(turn, kind, start, end, is a continuation) of each part of a span find(joined text, context) gives that
    crosses a turn of the block, and of the read-backs of a card, phone or SSN between its pieces. With card_cue
    the block is searched a second time, the edges of its turns blanked (searched)."""
    offsets, pos = [], 0
    for i in block:
        offsets.append(pos)
        pos += len(texts[i]) + 1
    for search in [texts] + ([{i: searched(texts[i]) for i in block}] if card_cue else []):
        joined = "\n".join(search[i] for i in block)
        for span in find(joined, context):
            parts = [(i, off) for i, off in zip(block, offsets) if span.start < off + len(texts[i]) and span.end > off]
            if len(parts) < 2:
                continue
            for n, (i, off) in enumerate(parts):
                start, end = max(span.start - off, 0), min(span.end - off, len(texts[i]))
                part = search[i][start:end]  # not what was blanked: "yes, and 4242" keeps "yes, and"
                start, end = start + len(part) - len(part.lstrip()), end - len(part) + len(part.rstrip())
                if end > start:
                    yield i, span.kind, start, end, n > 0
            if span.kind in READ_BACK_KINDS:
                between = [k for k in range(parts[0][0] + 1, parts[-1][0]) if k not in block]
                for i, start, end in read_backs(texts, between, digits(joined[span.start:span.end])):
                    yield i, span.kind, start, end, True


def searched(text: str) -> str:
    """The turn as its block is searched: the words before its first digit and after its last (all its words, if
    it says no number) blanked out, when they are all backchannel or prompt words (offsets do not move)."""
    tok = Tokens(text)
    n = len(tok.starts)
    numbers = [i for i, w in enumerate(tok.words[:n])
               if (w.isdecimal() or w in NUMBER_WORDS) and not _is_count(tok.words, i)]
    if numbers:
        edges = [(range(numbers[0]), 0, tok.starts[numbers[0]]),
                 (range(numbers[-1] + 1, n), tok.ends[numbers[-1]], len(text))]
    else:
        edges = [(range(n), 0, len(text))]
    chars = list(text)
    for words, start, end in edges:
        if all(tok.words[i] in EDGE or _is_count(tok.words, i) for i in words):
            chars[start:end] = [c if c in KEEP or c.isspace() else " " for c in text[start:end]]
    return "".join(chars)


def _between(text: str, said: Callable[[], str], reading_card: Callable[[], bool],
             remark_in_card: Callable[[str], bool]) -> bool:
    """True for a turn of the other speaker a block reads on through; said() is what the block said so far."""
    if len(text) >= BETWEEN_CHARS or MONEY.search(text):
        return False  # "$" says something of its own
    lowered = text.lower()
    first = WORD.search(lowered)
    if first and first.group() not in BETWEEN_WORDS:  # most turns: a word of their own, first thing
        return _remark(text, lowered, remark_in_card)
    words = WORD.findall(lowered)
    if not BETWEEN_WORDS.issuperset(words):
        return _remark(text, lowered, remark_in_card)
    if not CARD_WORDS.isdisjoint(words) and not reading_card():
        return False
    if NUMBER_WORDS.isdisjoint(words) and not DIGIT.search(text):
        return True  # backchannel or a prompt, no number in it
    tok = Tokens(text)
    in_runs = set()
    for run, ds, _, _ in _digit_runs(tok):
        if len(ds) < 2 or ds not in said():  # a digit of its own, or more than a read-back
            return False
        in_runs.update(run)
    return all(i in in_runs or w in PLAIN or _is_count(tok.words, i) for i, w in enumerate(tok.words[:len(tok.starts)]))


def _remark(text: str, lowered: str, remark_in_card: Callable[[str], bool]) -> bool:
    """A turn with words of its own is read through only in the middle of a card, and only when it says no number
    and names nothing ("Sorry, you broke up there", "Yes, I have that"): PCI makes over-redaction the cheap error."""
    # "oh" opening a remark ("Oh sorry, you cut out") is an interjection, not a zero
    return remark_in_card(text) and not DIGIT.search(text) and NUMBER_WORDS.isdisjoint(
        w for w in WORD.findall(lowered) if w not in ("oh", "o"))


def read_backs(texts: list[str], turns: list[int], number: str, shortest: int = 2) -> list[tuple[int, int, int]]:
    """(turn, start, end) of each run of `shortest` or more digits in the turns that repeats digits of the number."""
    return [(i, start, end) for i in turns for _, ds, start, end in _digit_runs(Tokens(texts[i]))
            if len(ds) >= shortest and ds in number]


def digits(text: str) -> str:
    """Every digit the text says, in order."""
    return "".join(ds for _, ds, _, _ in _digit_runs(Tokens(text)))


def counts(tok: Tokens) -> set[int]:
    """Indices of the words that count digits rather than say one ("the next four", "one moment")."""
    return {i for i in range(len(tok.starts)) if _is_count(tok.words, i)}


def _digit_runs(tok: Tokens) -> Iterator[tuple[list[int], str, int, int]]:
    """(token indices, digits, start, end) of each number run, counts ("the next four") left out."""
    for run in runs(tok, counts(tok)):
        ds = spell(tok, run)
        if ds:
            yield run, "".join(d[0] for d in ds), ds[0][1], ds[-1][2]


def _is_count(words: list[str], i: int) -> bool:
    w = words[i]
    if w == "one" and words[i + 1] in WAITS:
        return True  # "one moment": a wait, not a digit
    return i > 0 and words[i - 1] in COUNTED and (w in UNITS or (w.isdecimal() and len(w) == 1))
