"""Read numbers, dates and e-mail addresses the way Whisper writes them, for pipeline.redact.

Everything here works in character offsets of the original text, so redact can cut
exactly what was said; deciding *what* a number is (card, phone, ...) stays in redact.
Number words and digits joined only by spaces, punctuation or fillers form a run; a run
is spelled out as digits, each remembering the characters it came from.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import Iterable

from pipeline.redact_spans import ENTITIES

UNITS = dict(zip("zero one two three four five six seven eight nine".split(), "0123456789"), oh="0", o="0",
             nought="0", naught="0")  # British callers read a zero as "nought"
TEENS = {w: str(10 + i) for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: str(2 + i) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
SCALE = {"hundred", "thousand"}
MULT = {"double": 2, "triple": 3, "treble": 3}
FILLERS = {"um", "uh", "er", "erm", "ah", "hmm", "slash", "dash"}
NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | SCALE | set(MULT)
ORDINALS = {w: 1 + i for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split())} | {"thirtieth": 30}
MONTHS = set("january february march april may june july august september october november december "
             "jan feb mar apr jun jul aug sep sept oct nov dec".split())

# a placeholder redaction left ("[CARD]") is one opaque word, whatever kinds redaction knows
PLACEHOLDERS = "|".join(kind.upper() for kind in ENTITIES)
TOKEN = re.compile(rf"\[(?:{PLACEHOLDERS})\]|\d+(?:st|nd|rd|th)?|[^\W\d_]+(?:'[^\W\d_]+)?", re.I)
LETTERS = re.compile(r"[^\W\d_]+")  # every word TOKEN reads is made of such pieces
# ASCII bytes with every non-letter a space: on ASCII text, LETTERS' words are what str.split() leaves
_LETTERS_ONLY = bytes(c if chr(c).isalpha() and c < 128 else 32 for c in range(256))
GAP = re.compile(r"[\s,.;:/()+?!\"'_#\u2026\u2013\u2014-]*")  # what may sit between the numbers of one run ("4111?")
TIGHT = re.compile(r"[ \t-]*")                          # "forty two" / "forty-two" is 42; "forty, two" is 40 2
DAY_DIGITS = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")
DATE_WRITTEN = re.compile(r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|(?:19|20)\d\d-\d{1,2}-\d{1,2})\b")
# Words that end a phrase before a website's "at" ("sign up at", "log in at", "find us online at"), not an
# address's local part: "sign up at skyline dot com" is a web address, not up@skyline.com
NOT_LOCAL = "in|on|up|us|me|him|her|them|online|back|out"
SPOKEN_EMAIL = re.compile(
    r"(?<![\w'.-])(?!(?:" + NOT_LOCAL + r")\s+(?:at|@)\s)"
    r"(?:[a-z0-9]\s){0,3}[a-z0-9]+(?:(?:\s*[._-]\s*|\s+(?:dot|underscore|dash|hyphen)\s+)[a-z0-9]+)*"
    r"(?:\s+(?:" + "|".join(sorted(NUMBER_WORDS - SCALE - set(MULT))) + r"))*"  # "jsmith eighty four at ..."
    r"\s+(?:at|@)\s+[a-z0-9]+(?:(?:\s*\.\s*|\s+dot\s+)[a-z0-9]+)*(?:\s*\.\s*|\s+dot\s+)"
    r"(?:com|net|org|edu|gov|io|co|uk|us|ca|au|de|fr|ie|nz|info|biz|me)\b", re.I)
SPOKEN_AT = re.compile(r"(?<!\S)at\s", re.I)  # "at" between words, or opening a turn ("anna dot brooks" / "at gmail")
WRITTEN_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


# Typed text (a vendor's transcript, a CRM note) has symbols from other keyboards: a phone written
# "206‑555‑0142" with non-breaking hyphens, "２０６－５５５－０１４２" or "anna＠gmail.com" from a full-width
# keyboard. Read as the ASCII symbol each stands for, one character for one, so every offset still points
# into the text as written.
FOLDED = str.maketrans({**{chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)},  # full-width ASCII
                        **dict.fromkeys("\u2010\u2011\u2012\u2212\ufe63", "-"), "\ufe6b": "@"})


def letter_words(text: str) -> list[str]:
    """LETTERS.findall(text.lower()); on ASCII text (nearly every turn) without the regex engine, which
    made this the largest cost of the many turns that say no number."""
    if text.isascii():
        return text.encode().translate(_LETTERS_ONLY).decode().lower().split()
    return LETTERS.findall(text.lower())


def folded(text: str) -> str:
    """text with full-width characters and other hyphens read as ASCII; the same length, offset for offset."""
    return text if text.isascii() else text.translate(FOLDED)  # nearly every turn is ASCII: no copy


class Tokens:
    """Words of a text (lower-cased) with their character offsets; placeholders are opaque words."""

    def __init__(self, text: str):
        found = list(TOKEN.finditer(text))
        self.text = text
        self.words = [m.group().lower() for m in found] + [""] * 4  # padding: look-ahead needs no bounds checks
        self.starts = [m.start() for m in found]
        self.ends = [m.end() for m in found]


def covered(tok: Tokens, ranges: Iterable[tuple[int, int]]) -> set[int]:
    """Indices of the tokens overlapping any (start, end) range: text already claimed is not read twice."""
    return {i for a, b in ranges for i in range(bisect_right(tok.ends, a), bisect_left(tok.starts, b))}


# --- number runs ---------------------------------------------------------------------------

def runs(tok: Tokens, blocked: set[int]) -> list[list[int]]:
    """Token indices of maximal runs of number words/digits joined only by GAP characters or fillers."""
    found, run = [], []
    for i, w in enumerate(tok.words[:len(tok.starts)]):
        joinable = bool(run) and run[-1] == i - 1 and GAP.fullmatch(tok.text, tok.ends[i - 1], tok.starts[i])
        number = w.isdecimal() or w in NUMBER_WORDS
        if i not in blocked and (number or (joinable and w in FILLERS)):
            if run and not joinable:
                found.append(run)
                run = []
            run.append(i)
        elif run:
            found.append(run)
            run = []
    found.append(run)
    return [r[:max(k for k, i in enumerate(r) if tok.words[i] not in FILLERS) + 1] for r in found if r]


def spell(tok: Tokens, run: list[int]) -> list[tuple[str, int, int, bool]]:
    """The digits a run says: (digit, start char, end char, first digit of its group)."""
    ws = [tok.words[k] for k in run] + ["", ""]
    tight = [bool(TIGHT.fullmatch(tok.text, tok.ends[a], tok.starts[b])) for a, b in zip(run, run[1:])] + [False]
    out, i = [], 0
    while i < len(run):
        w, start = ws[i], tok.starts[run[i]]
        if w.isdecimal():
            out += [(c, start + j, start + j + 1, j == 0) for j, c in enumerate(w)]
            i += 1
            continue
        single = UNITS.get(ws[i + 1]) or (ws[i + 1] if len(ws[i + 1]) == 1 and ws[i + 1].isdecimal() else "")
        said, used = (single * MULT[w], 2) if w in MULT and single else _words_value(ws, i, tight)
        end = tok.ends[run[i + used - 1]]
        out += [(c, start, end, j == 0) for j, c in enumerate(said)]
        i += used
    return out


def _words_value(ws: list[str], i: int, tight: list[bool]) -> tuple[str, int]:
    """Digits said by the number words at ws[i:], and how many words that took."""
    w, nxt = ws[i], ws[i + 1]
    if w in TENS:
        if tight[i] and UNITS.get(nxt, "0") != "0":
            return TENS[w] + UNITS[nxt], 2
        return TENS[w] + "0", 1
    head = TEENS.get(w) or UNITS.get(w, "")
    if head and head != "0" and nxt in SCALE:
        zeros = 2 if nxt == "hundred" else 3
        after = ws[i + 2]
        # "eight hundred five five five" is 800 555 (how phone numbers are read); "two thousand five" is 2005
        if after in TEENS or after in TENS or (zeros == 3 and after in UNITS):
            tail, used = _words_value(ws, i + 2, tight)
            return head + tail.zfill(zeros), used + 2
        return head + "0" * zeros, 2
    return head, 1  # fillers, bare scale words and multipliers say no digit


def is_date(digits: str) -> bool:
    def ok(d, m, y):
        return 1 <= int(d) <= 31 and 1 <= int(m) <= 12 and (len(y) == 2 or 1900 <= int(y) <= 2030)
    if len(digits) == 6:
        return ok(digits[:2], digits[2:4], digits[4:]) or ok(digits[2:4], digits[:2], digits[4:])
    head, mid, tail = digits[:2], digits[2:4], digits[4:]
    return ok(head, mid, tail) or ok(mid, head, tail) or ok(digits[6:], digits[4:6], digits[:4])


# --- dates and emails ----------------------------------------------------------------------

def dates(tok: Tokens, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) of written and spoken dates outside the taken ranges."""
    found = [(m.start(), m.end()) for m in DATE_WRITTEN.finditer(tok.text)]
    if MONTHS.isdisjoint(tok.words):
        return found  # every spoken date names its month; most turns name none
    blocked = covered(tok, taken + found)
    ws, i = tok.words, 0
    while i < len(tok.starts):
        j = 0 if i in blocked else _date_end(ws, i)
        if j > i:
            found.append((tok.starts[i], tok.ends[min(j, len(tok.starts)) - 1]))
        i = max(j, i + 1)
    return found


def _date_end(ws: list[str], i: int) -> int:
    """End of a date starting at word i, else 0: "fourth of March[,] nineteen eighty six", "4 March 86",
    "March 4th 1986", "March the fourth", "March 1986" (the longest reading wins)."""
    if ws[i] in MONTHS:
        k = i + 1 + (ws[i + 1] in ("the", "of"))
        day, year = _day(ws, k, cardinal=True), _year(ws, k)
        return max(k + day + _year(ws, k + day) if day else 0, k + year if year else 0)
    day = _day(ws, i, cardinal=False)
    k = i + day + (ws[i + day] == "of")
    return k + 1 + _year(ws, k + 1) if day and ws[k] in MONTHS else 0


def _day(ws: list[str], i: int, cardinal: bool) -> int:
    w, nxt = ws[i], ws[i + 1]
    if w in ORDINALS:
        return 1
    if w in ("twenty", "thirty") and ORDINALS.get(nxt, 99) < 10:
        return 2
    match = DAY_DIGITS.fullmatch(w)
    if match:
        return int(1 <= int(match.group(1)) <= 31)
    return _small(ws, i) if cardinal else 0  # "March four", "March twenty one"


def _year(ws: list[str], i: int) -> int:
    """How many words from i say a year: 1986, nineteen eighty six, two thousand and one, eighty six."""
    w, nxt, third = ws[i], ws[i + 1], ws[i + 2]
    if w.isdecimal():
        return int(len(w) == 2 or (len(w) == 4 and w[:2] in ("19", "20")))
    if w == "two" and nxt == "thousand":
        tail = _small(ws, i + 3) if third == "and" else _small(ws, i + 2)
        return 2 + (tail + (third == "and") if tail else 0)
    if w in ("eighteen", "nineteen", "twenty"):
        if nxt == "hundred" or nxt in TEENS:
            return 2
        if nxt in ("oh", "o", "zero") and UNITS.get(third, "0") != "0":
            return 3
        if nxt in TENS:
            return 2 + (UNITS.get(third, "0") != "0")
    return _small(ws, i) if w in TENS else 0


def _small(ws: list[str], i: int) -> int:
    """Words saying a number 1-99 at i (teen, tens [unit], or unit), else 0."""
    if ws[i] in TENS:
        return 1 + (UNITS.get(ws[i + 1], "0") != "0")
    return int(ws[i] in TEENS or UNITS.get(ws[i], "0") != "0")


def emails(text: str) -> list[tuple[int, int]]:
    """(start, end) of written and spoken e-mail addresses."""
    found = [(m.start(), m.end()) for m in WRITTEN_EMAIL.finditer(text)] if "@" in text else []
    if "@" in text or SPOKEN_AT.search(text):
        found += [(_local_part(text, m.start()), m.end()) for m in SPOKEN_EMAIL.finditer(text)]
    return found


# A spoken address's local part may be several words ("jane doe at example dot org" is janedoe@), which the
# pattern, joining words only by dot/underscore/dash, starts at the last of: "jane" was kept. Back to the cue:
# (not over "me at" / "us at": "email us at help at ..." keeps the words before the address)
EMAIL_CUE = re.compile(r"\b(?:e-?mail|address)(?:\s+address)?(?:\s+is|'s|:)?\s+((?:(?!(?:at|to|"
                       + NOT_LOCAL + r")\b)[a-z0-9]+[\s._-]+){0,4})$", re.I)
# or, without one, over words joined by a spoken dot/underscore/dash just before it ("jane dot doe test at ...")
JOINED_BEFORE = re.compile(r"(?<![\w'])(?:[a-z0-9]+\s+(?:dot|underscore|dash|hyphen)\s+)+[a-z0-9]+\s+$", re.I)


def _local_part(text: str, start: int) -> int:
    before = text[max(0, start - 80):start]
    if m := EMAIL_CUE.search(before) or JOINED_BEFORE.search(before):
        return start - len(before) + m.start(m.lastindex or 0)
    return start
