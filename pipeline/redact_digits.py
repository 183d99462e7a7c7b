"""What a run of digits says: a card (Luhn), an SSN, bank details, a PIN, a phone, a date of birth, or nothing
(part of redaction).

pipeline/redact.py finds the runs and their cues; here the digits of one run are judged. `ds` is a run spelled
out as digits, each (digit, start, end, opens a group) in the text it came from; kinds are returned as
(kind, first digit, end digit) of the run.
"""
from __future__ import annotations

import re

from pipeline.spoken import is_date

AMOUNT = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
SSN_WRITTEN = re.compile(r"\d{3}-\d{2}-\d{4}")

def luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (1 + i % 2)  # int(), not ord(): a full-width "４" is a digit too
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def classify(ds, cue, text: str, dob_cue: bool, lead_oh: bool) -> list[tuple[str, int, int]]:
    """(kind, first digit, end digit) of what a run of digits says; see pipeline/redact.py's docstring."""
    digits = "".join(d[0] for d in ds)
    n = len(digits)
    # no card starts with 0: an "oh" before 16 digits or more is an interjection ("Oh, four one one one ..."), and
    # stays; before fewer it may be the number's own first digit (as ASR heard it), and goes with it
    oh = 1 if lead_oh and n > 16 and digits[0] == "0" and digits[1] != "0" else 0
    if cue == "bank" and 6 <= n <= 18 and not (n >= 13 and luhn(digits[oh:])):
        return [("bank", oh, n)]  # a sort code, routing or account number; a card's number is still a card
    if n >= 13 and cue == "card":
        cards = [(oh, n)]
    elif _device_id(digits):
        cards = []
    elif 13 <= n <= 19:
        cards = [(oh, n)] if luhn(digits[oh:]) else []
        # a card glued to a shorter number before it ("zip 90210 4111 ..."), or a card and digits ASR repeated
        cards = cards or _card_windows(ds, digits) or ([(0, n)] if cue != "id" and _card_first(digits) else [])
    else:
        # an order or account number said just before a card joins its run; a long id read in groups
        # (a tracking number) is no card, so with an id cue only a card in a turn or group of its own counts
        cards = _card_windows(ds, digits, text if cue == "id" else None) if n > 19 else []
        if n > 19 and cue != "id" and not cards:
            # 20+ digits with no card at a group boundary: Whisper looping on a card read aloud ("4424242424...");
            # no identifier said on a call is that long, so the whole run goes
            cards = [(0, n)]
    found, lo = [], 0
    for a, b in cards:
        found += _not_card(digits[lo:a], lo, cue, text[ds[lo][1]:ds[a - 1][2]] if a > lo else "", dob_cue)
        found.append(("card", a, b))
        lo = b
    return found + _not_card(digits[lo:], lo, cue, text[ds[lo][1]:ds[-1][2]] if lo < n else "", dob_cue)


def _card_windows(ds, digits: str, own_turn_in: str | None = None) -> list[tuple[int, int]]:
    """Cards in a run longer than a card: Luhn-valid windows of 13-19 digits that start and end where a digit
    group does, best first and never overlapping; up to 8 digits after a card (expiry, CVV) go with it.
    own_turn_in: the text, when only windows that open a turn of a joined block or are one group count."""
    n = len(digits)
    bounds = {i for i, d in enumerate(ds) if d[3]} | {n}
    starts = bounds if own_turn_in is None else {
        i for i in bounds if i < n and ((i and "\n" in own_turn_in[ds[i - 1][2]:ds[i][1]])
                                        or not any(ds[k][3] for k in range(i + 1, min(i + 13, n))))}
    # no card number starts with 0 (and a run of zeros is Luhn-valid)
    windows = [(a, a + k) for a in sorted(starts) if a < n and digits[a] != "0" for k in range(13, 20)
               if a + k in bounds and luhn(digits[a:a + k])]
    # a real card starts 2-6 and is mostly 16 long (Amex 15): that beats a chance Luhn window over other numbers
    windows.sort(key=lambda w: (digits[w[0]] not in "23456", abs(w[1] - w[0] - 16), w[0]))
    taken, cards = bytearray(n), []
    for a, b in windows:
        if not any(taken[a:b]):
            taken[a:b] = b"\1" * (b - a)
            cards.append((a, b))
    cards.sort()
    nexts = [a for a, _ in cards[1:]] + [n]
    return [(a, nxt if nxt - b <= 8 else b) for (a, b), nxt in zip(cards, nexts)]


def _card_first(digits: str) -> bool:
    """A card's 16 (Amex: 15) digits first, in groups ASR made up and with digits it said again after them:
    "4 -11 -11 -11 -11 -11 -11 -11 -11 -11" for "four one one one, one one one one, ...": 17-19 digits."""
    return (luhn(digits[:16]) and digits[0] in "2456") or (digits[:2] in ("34", "37") and luhn(digits[:15]))


def priced(ds, cue, text: str, dob_cue: bool) -> list[tuple[str, int, int]]:
    """What a run beside a money sign or word says: nothing of the price itself, but a whole card or a written SSN
    (no price is either), and a card after the price with what follows it."""
    return classify(ds, cue, text, dob_cue, False) if _no_price(ds, text) else _after_price(ds, cue, text, dob_cue)


def _no_price(ds, text: str) -> bool:
    """A run no price is, though a money sign or word is beside it: a Luhn-valid 13-19 digits, a written SSN."""
    digits = "".join(d[0] for d in ds)
    return (13 <= len(digits) <= 19 and luhn(digits)) or bool(SSN_WRITTEN.fullmatch(text[ds[0][1]:ds[-1][2]]))


def _after_price(ds, cue, text: str, dob_cue: bool) -> list[tuple[str, int, int]]:
    """A price's run: a card after the price ("$50. 4111 1111 1111 1111"), never from its first digit, and what
    the digits after that card say, read as a run of their own."""
    windows = _card_windows(ds, "".join(d[0] for d in ds)) if len(ds) > 13 else []
    hits = [("card", a, b) for a, b in windows if a > 0]
    end = hits[-1][2] if hits else len(ds)
    return hits + [(kind, a + end, b + end) for kind, a, b in classify(ds[end:], cue, text, dob_cue, False)]


def _device_id(digits: str) -> bool:
    """A phone's IMEI (15 digits, 35/86/01/99; Luhn-valid by design) or a SIM's ICCID (19-20 digits, 89): no card
    number starts so (Amex is 34/37), and telecom calls say them all the time."""
    return (len(digits) == 15 and digits[:2] in ("35", "86", "01", "99")) or (
        len(digits) in (19, 20) and digits.startswith("89"))


def _not_card(digits: str, lo: int, cue: str | None, raw: str, dob_cue: bool) -> list[tuple[str, int, int]]:
    n = len(digits)
    if cue == "bank" and 6 <= n <= 18:
        return [("bank", lo, lo + n)]
    if n == 9 and (cue == "ssn" or SSN_WRITTEN.fullmatch(raw)):
        return [("ssn", lo, lo + n)]
    if dob_cue and n in (6, 8) and is_date(digits):
        return [("dob", lo, lo + n)]
    if cue == "cvv" and 2 <= n <= 8:
        return [("card", lo, lo + n)]
    if cue == "pin" and 4 <= n <= 8:
        return [("pin", lo, lo + n)]
    if cue == "id" or AMOUNT.fullmatch(raw):  # "1,234,567,890" is a number, not a phone
        return []
    if n == 10 or (n == 11 and digits[0] in "01") or (n == 12 and digits.startswith("44")):
        return [("phone", lo, lo + n)]
    if cue == "phone" and 7 <= n <= 13:  # asked for a phone: a local number, or one ASR lost or split digits of
        return [("phone", lo, lo + n)]
    return []
