"""What a number is said to be: the cue words of pipeline.redact ("card number", "security code", "order").

A cue is a word, or a pair of words, naming what a run of digits is; pipeline.redact takes the nearest one
(see its docstring). Some words name something only in company: "code" is a card's security code where a
payment card is named, and "card" is no payment card after "SIM" or "gift".
"""
from __future__ import annotations

import re

from pipeline.spoken import TOKEN, Tokens

# "cv" is how "CV2" reads (a word, then a digit); "credit"/"debit" alone are no card ("a credit of $17", "direct debit")
CUE_WORDS = {**dict.fromkeys("expiry expires expire expired expiring expiration exp cvv cvc cv csc".split(), "cvv"),
             **dict.fromkeys("card cards visa mastercard amex".split(), "card"),
             **dict.fromkeys("social ssn".split(), "ssn"),
             **dict.fromkeys("phone phones mobile cell telephone landline".split(), "phone"),
             **dict.fromkeys("order account reference ref tracking ticket invoice confirmation policy zip postcode "
                             "postal".split(), "id"),
             **dict.fromkeys("birth birthday birthdate born dob".split(), "dob")}
CUE_WORDS |= dict.fromkeys("iban aba".split(), "bank")
# a card's PIN, an account's passcode or password said as digits: a secret that opens the account
CUE_WORDS |= dict.fromkeys("pin pins passcode passcodes password passwords passnumber".split(), "pin")
CUE_WORDS |= {w + "'s": kind for w, kind in CUE_WORDS.items()}  # "my card's number is", "the visa's expiry"
CUE_PAIRS = {("security", "code"): "cvv", ("security", "number"): "cvv", ("digit", "code"): "cvv",
             ("credit", "card"): "card", ("debit", "card"): "card", ("american", "express"): "card",
             ("long", "number"): "card", ("contact", "number"): "phone", ("d", "o"): "dob"}
CUE_PAIRS |= {("valid", b): "cvv" for b in ("thru", "through", "until", "till", "to")}  # an expiry
CUE_PAIRS |= {(a, b): "phone" for a in ("call", "reach", "text", "ring") for b in ("me", "you", "him", "her", "us")}
CUE_PAIRS |= {(a, b): "id" for a in "case member membership customer claim booking transaction serial".split()
              for b in ("number", "no", "id", "code")}
# a bank's sort code (UK) or routing number (US), and an account "with the bank" rather than with us
CUE_PAIRS |= {("sort", "code"): "bank", ("routing", "number"): "bank", ("routing", "no"): "bank",
              ("bank", "details"): "bank", ("account", "details"): "bank"}
CUE_PAIRS |= {(a, b + "'s"): kind for (a, b), kind in CUE_PAIRS.items()}  # "my sort code's 20 45 77"
BANK_HINT = re.compile(r"\b(?:bank|banks|bank's|banking|sort code|routing|iban|direct debit|building society|"
                       r"checking|savings|current account)\b")  # lower; where these are, "account number" is a bank's
CUE_HEADS = set(CUE_WORDS) | {a for a, _ in CUE_PAIRS} | {"back", "code"}
# "code" alone is a card's security code only where a card is named; these codes are something else
NOT_CVV_CODE = set("zip post postal area promo promotional discount voucher sort country access confirmation reference "
                   "error puk pin activation unlock reset otp sms text verification gift "
                   "booking tracking dialling dialing".split())
NOT_PAYMENT = set("sim id gift loyalty reward rewards membership library business greeting key sd memory graphics "
                  "sound network store".split())  # "SIM card", "gift card": no card number to protect
CARD_HINT = re.compile("|".join(w for w, kind in CUE_WORDS.items() if kind == "card") + "|american|long")  # lower
CUE_AFTER = re.compile(r"[\s,]*(?:(?:is|was|that's|its|it's|my|your|the)\s+){0,3}")


def find_cues(ws: list[str], bank: bool = False) -> list[tuple[str, int]]:
    """(class, word index) of every cue word; the classes are in pipeline.redact's docstring. bank: a bank is
    named in the question answered, so "account" is a bank account even where this turn names none."""
    found = []
    for i, w in enumerate(ws):
        if w in CUE_HEADS:
            kind = CUE_PAIRS.get((w, ws[i + 1])) or CUE_WORDS.get(w)
            if w == "back" and ws[i - 2:i] == ["on", "the"] and ws[i - 3] in ("digits", "numbers", "code"):
                kind = "cvv"  # "the three digits on the back"
            elif w in ("account", "account's") and kind == "id" and (bank or names_bank(ws)):
                kind = "bank"
            elif w == "code" and not kind:
                kind = "cvv" if ws[i - 1] not in NOT_CVV_CODE and _names_card(ws) else None
            elif (w in ("card", "cards", "card's") and ws[i - 1] in NOT_PAYMENT) or (
                    w == "order" and ws[i - 1] == "in") or (
                    w == "security" and ws[i - 1] == "social"):  # "social security number" is an SSN's cue
                kind = None
            if kind:
                found.append((kind, i))
    return found


def names_bank(ws: list[str]) -> bool:
    return BANK_HINT.search(" ".join(ws)) is not None


def _names_card(ws: list[str]) -> bool:
    return any((CUE_WORDS.get(w) == "card" and ws[i - 1] not in NOT_PAYMENT)
               or (w, ws[i + 1]) in (("american", "express"), ("long", "number")) for i, w in enumerate(ws[:-1]))


def cue_words(text: str) -> list[str]:
    return TOKEN.findall(text.lower()) + [""] * 4


def nearest(cues, tok: Tokens, first: int, last: int) -> str | None:
    """Class of the last cue before words first..last, else of one right after them ("... is my order number")."""
    before = [kind for kind, i in cues if i < first]
    if before:
        return before[-1]
    after = next(((kind, i) for kind, i in cues if i > last), None)
    if after and CUE_AFTER.match(tok.text, tok.ends[last]).end() >= tok.starts[after[1]]:
        return after[0]
    return None


def has_other_cue(text: str) -> bool:
    return any(kind != "card" for kind, _ in find_cues(cue_words(text)))


def has_card_cue(text: str) -> bool:
    return bool(CARD_HINT.search(text.lower())) and any(kind == "card" for kind, _ in find_cues(cue_words(text)))
