"""Identifiers spelled with letters: a UK National Insurance number (kind ssn) and an IBAN (kind bank).

Part of redaction (pipeline/redact.py). Runs of digits alone would judge only their digits ("12 34 56" is
nothing), so these are found first, like e-mails, and their text is not read again.
"""
from __future__ import annotations

import re

from pipeline.spoken import Tokens, runs, spell

# A UK National Insurance number as Whisper writes one ("AB 12 34 56 C"): its prefix letters are never D F I Q U V
# in first place nor D F I O Q U V second; in lower case ("ab123456c") only where it is named, as words go lower too
NI_NUMBER = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
NI_ANY_CASE = re.compile(NI_NUMBER.pattern, re.IGNORECASE)
NI_WORDS = {"insurance", "ni", "nino"}  # naming one: "What's your national insurance number?", "my NI number"
NI_FIRST, NI_SECOND, NI_LAST = set("abceghjklmnoprstwxyz"), set("abceghjklmnprstwxyz"), set("abcd")
# two capitals said apart ("J K one two ..."), or two together: where a spoken NI number may begin
SPOKEN_NI_SHAPE = re.compile(r"\b[A-Z]\b[ .,]*\b[A-Z]\b|\b[A-Z]{2}\b")
# how each begins where no NI number is named (letters glued to digits, or capitals): one search for a turn
ID_SHAPE = re.compile(r"[A-Za-z]{2}\d{2}|[A-Z]{2} \d{2}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", re.IGNORECASE)


def ni_named(words: list[str]) -> bool:
    """Whether lower-cased words name a National Insurance number."""
    return not NI_WORDS.isdisjoint(words)


def written_ids(text: str, named: bool = False) -> list[tuple[str, int, int]]:
    """(kind, start, end) of each National Insurance number (kind ssn) and IBAN (kind bank) written in text:
    letters and digits together. named: the turn or the question it answers names an NI number (ni_named), so
    lower case counts."""
    if not named and not ID_SHAPE.search(text):
        return []  # most turns: this one search, not both finders
    ni = NI_ANY_CASE if named else NI_NUMBER
    found = [("ssn", m.start(), m.end()) for m in ni.finditer(text)]
    return found + [("bank", m.start(), m.end()) for m in IBAN.finditer(text) if iban_valid(m.group())]


def iban_valid(iban: str) -> bool:
    """ISO 13616's check: the country and check digits moved to the end, letters as 10-35, mod 97 is 1."""
    code = iban.replace(" ", "").upper()
    return 15 <= len(code) <= 34 and int("".join(str(int(c, 36)) for c in code[4:] + code[:4])) % 97 == 1


def spoken_ni(tok: Tokens, named: bool) -> list[tuple[str, int, int]]:
    """(ssn, start, end) of each NI number said letter by letter: two letters ("A B", "ab"), six digits in any
    words, a last letter A-D. In capitals (as Whisper writes letters said alone), or where one is named."""
    if not named and not SPOKEN_NI_SHAPE.search(tok.text):
        return []
    found = []
    for run in runs(tok, set()):
        first, last = _ni_letters(tok, run[0]), run[-1] + 1
        if first is None or len(tok.words[last]) != 1 or tok.words[last] not in NI_LAST or len(spell(tok, run)) != 6:
            continue
        start, end = tok.starts[first], tok.ends[last]
        letters = [tok.text[tok.starts[k]:tok.ends[k]] for k in (*range(first, run[0]), last)]
        if named or all(w.isupper() for w in letters):
            found.append(("ssn", start, end))
    return found


def _ni_letters(tok: Tokens, at: int) -> int | None:
    """Index of the first of the two prefix letters said just before word `at`, if they are there."""
    one = tok.words[at - 1] if at >= 1 else ""
    if len(one) == 2 and one[0] in NI_FIRST and one[1] in NI_SECOND:
        return at - 1
    if at >= 2 and len(one) == 1 and one in NI_SECOND and len(tok.words[at - 2]) == 1 and tok.words[at - 2] in NI_FIRST:
        return at - 2
    return None
