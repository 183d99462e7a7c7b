"""Take PII and card data out of transcript text before anything is written.

Whisper writes numbers in every shape ("4242 4242", "424242424242 4242", "four two",
"forty two", "double four", "oh"), so they are not matched with digit regexes: number
words and digits joined only by spaces, punctuation or fillers ("um", "slash") form a
*run*; the run is spelled out as digits, each remembering the characters it came
from, and the digits are judged. Spans are character offsets in the original text.

A cue is a word that says what a run is; the *nearest* decides: the last cue before
the run, else one right after it ("... is my order number"), else the last one of the
context (the turn answered: the previous one, or, past turns of the same speaker that name
nothing and say no number, "Hang on.", the other speaker's question before them); for a
run of up to 8 digits a cvv cue of the context beats its card cue ("the three digit code
on the back of the card?"). Classes: card (card, visa, mastercard, amex, credit/debit card,
long number; not "SIM card", "gift card"), cvv (expiry/expires, valid thru, security code,
CVV, digits on the back, "code" where a card is named), ssn (social, SSN), pin (PIN, passcode,
password), phone (phone, mobile, cell, call me, reach you), bank (sort code, routing number, IBAN,
bank details; "account" where a bank is named in the turn, its context or the CUE_TURNS before), id (order,
account, reference, tracking, ticket, invoice, confirmation, policy, zip, case/member/claim... number). Money runs ("$",
"dollars") are a price, except a whole card or a written SSN (no price is either), and a card
at a group boundary after the price, with what follows it (pipeline/redact_digits.py).

- card: with a card cue, any run of >= 13 digits, Luhn or not (ASR mishears digits;
  for PCI over-redaction is the cheap error). Else a run of 13-19 digits that is
  Luhn-valid, whatever its cue (a leading "oh" may be an interjection). In a run that is
  not one (card, expiry and CVV read together; an order number just before a card):
  Luhn-valid 13-19 digit windows that start and end at a digit-group boundary and not
  at a 0, best first (starting 2-6, 16 long, earliest), never overlapping. Up to 8
  digits after a card in its run go with it; more are judged on their own. A run of 20+
  digits with no such window (Whisper looping on a card: "4424242424...") goes whole,
  unless an id cue is nearest (tracking numbers are long); so does one of 17-19 whose
  first 16 (Amex 15) are a card, in groups ASR made up ("4 -11 -11 ..."). Where a card is named, runs
  at most 4 words apart whose digits together are a Luhn-valid card ("4111 1111, sorry,
  1111 1111").
- expiry/CVV, redacted as card: 2-8 digits with a cvv cue nearest (with a month name
  just before: "September twenty seven"); 3-8 digits at most 3 words after a card.
- ssn: 9 digits with an ssn cue, or written NNN-NN-NNNN; a UK National Insurance number, written
  ("AB 12 34 56 C") or said ("J K one two three four five six C"), in capitals or where the turn or
  the question it answers names one (pipeline/redact_ids.py), found before the runs like an email.
- pin: 4-8 digits with a pin cue nearest ("my PIN is 4821"; "What's the passcode on the account?" / "1 9 7 3").
- bank: 6-18 digits with a bank cue nearest, unless a Luhn-valid 13-19 (a card); a written IBAN whose
  mod-97 check holds.
- dob, with a DOB cue (birth, born, birthday, DOB) in the utterance or context, since
  a delivery date is not PII; without one, only a date whose year is an adult's birth
  year (1900-2012), because ASR often loses the question: "the fourth of March, nineteen eighty six",
  "March 4th 1986", "March 1986", "4 March 86", "04/03/1986", "1986-03-04", and runs
  of 6 or 8 digits that read as a date.
- phone: 10 digits, 11 starting 1 or 0 (UK), 12 starting 44 (+44); not with an id cue.
  With a phone cue, 7-13 digits (a local number, or one ASR lost or split digits of).
- email: written, and spoken: "anna dot brooks at gmail dot com", "j underscore smith
  at outlook dot co dot uk" (the last label must be a common TLD).
Kept: prices, times, zip codes, short runs, dates without a DOB cue, non-Luhn
card-length runs without a card cue.

Across turns (redact_utterances; which turns, in pipeline.redact_turns): consecutive
turns of one speaker - the other speaker silent, backchannelling ("mhm", "okay"),
prompting for more digits ("and the next four?", "and the rest?") or reading digits
back ("mhm, 4111, go on") between - are also searched joined, the turn before them as
context (a card cue between them, or when that turn has no cue one up to 4 turns back:
the agent's question, takes its place), and a span crossing a turn boundary is redacted
in each turn it touches: a card, phone or date read over several turns (Whisper turns
end at pauses) goes, and with a card, phone or SSN the read-backs of its digits between
its pieces, and in the 4 turns after it runs of at least half its digits, or all of a
code's ("That's 123 45 6789", "so one two three").

Known limits: a card read in pieces with words other than backchannel between them in one
turn where no card is named is missed; so are its pieces when the other speaker says a
number of their own between them ("4112?" misheard); 7-digit local numbers, extensions and
non-US/UK phone formats are not phones without a phone cue; a birth year alone is one only
in answer to a name, a date or a date of birth (and any year of 1900-2012 said alone then
is taken for one); a non-DOB date in the turn after a DOB question is redacted; a 13-19
digit Luhn-valid identifier is a card, in one turn or read in pieces.
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Callable, Collection

from pipeline.spoken import (MONTHS, NUMBER_WORDS, ORDINALS, TEENS, TENS, Tokens, covered, dates,
                             emails, folded, letter_words, runs, spell)
from pipeline.redact_cues import (BANK_HINT, CUE_HEADS, cue_words, find_cues, has_card_cue, has_other_cue, names_bank,
                                  nearest)
from pipeline.redact_spans import ENTITIES, READ_BACK_KINDS, Span, apply_spans, merge, redact_row
from pipeline.redact_digits import classify, luhn, priced
from pipeline.redact_ids import ni_named, spoken_ni, written_ids
from pipeline.redact_turns import (CUE_TURNS, EDGE, counts, cross_turn, digits, may_cross, read_backs,
                                   turn_blocks)

TWO_DIGIT_WORDS = set(TEENS) | set(TENS)  # one word that alone says two digits ("nineteen", "forty")
CLUES = NUMBER_WORDS | MONTHS | {"at"}  # a turn without a digit or "@" says none of these, or no PII

DIGIT_OR_AT = re.compile(r"[\d@]")
ONE_DIGIT = re.compile(r"\d")
MONEY_AFTER = re.compile(r"\s*(?:dollars?|bucks|pounds?|quid|euros?|cents?|pence|percent|%)", re.I)


# A date with an adult's birth year is a date of birth even when ASR lost the question that asked for it
# ("can I have your birth date" heard as "bird eight"): calls rarely name other dates that far back.
BIRTH_YEAR = re.compile(
    r"\b(?:19\d\d|200\d|201[0-2])\b|\bnineteen (?:hundred|oh|o|zero|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)\b|"
    r"\btwo thousand(?: and)? (?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b")


# Asked for a name or a date, a caller verifying who they are gives their birth date: a year said alone then is
# its year, even when ASR lost the cue ("your full name and worth date", "name and word made") and the day.
IDENTITY_WORDS = {"name", "date"}


def find_pii(text: str, entities: Collection[str] = ENTITIES, context: str = "") -> list[Span]:
    """Non-overlapping PII spans of text, sorted; context is the previous utterance of the call.

    Example:
        >>> find_pii("it's 4111 1111 1111 1111")
        [Span(kind='card', start=5, end=24)]
    """
    text = folded(text or "")
    return _find_pii(text, entities, _asked(folded(context))) if text and _may_hold_pii(text) else []


ACCOUNT = {"account", "account's"}
Asked = tuple[list[str], list[tuple[str, int]]]  # the context's cue words, and the cues among them


def _asked(context: str) -> Asked:
    words = cue_words(context) if context else []
    return words, find_cues(words)


def _find_pii(text: str, entities: Collection[str], context: Asked, context_dob: bool = True,
              bank: bool = False) -> list[Span]:
    """find_pii(); context_dob: whether a DOB cue in the context counts (not from a question turns back: a date
    said a few turns after "your date of birth?" may be any date); bank: the call is on a bank account (a bank
    named in the CUE_TURNS before), so an account number is the bank's even where the context names none."""
    tok = Tokens(text)
    asked, context_cues = context
    # only an "account" is told apart by a bank named; most turns have none, and skip the search for one
    bank = not ACCOUNT.isdisjoint(asked + tok.words) and (bank or names_bank(asked))
    cues = find_cues(tok.words, bank=bank)
    if bank:
        context_cues = find_cues(asked, bank=True)  # "So that's 20 00 00, and the account number?"
    dob_cue = any(kind == "dob" for kind, _ in cues + (context_cues if context_dob else []))
    year_cue = dob_cue or (context_dob and not IDENTITY_WORDS.isdisjoint(asked))
    named = ni_named(asked) or ni_named(tok.words)  # "What's your national insurance number?" / "ab 12 34 56 d"
    found = [Span("email", a, b) for a, b in emails(text)]
    found += [Span(*hit) for hit in written_ids(text, named) + spoken_ni(tok, named)]
    found += [Span("dob", a, b) for a, b in dates(tok, [(s.start, s.end) for s in found])
              if dob_cue or BIRTH_YEAR.search(text[a:b].lower())]
    kinds = [kind for kind, _ in context_cues if kind != "dob"]
    context_cue = kinds[-1] if kinds else None
    # "the three digit code on the back of the card?": a short answer is the code, whichever cue came last
    short_cue = "cvv" if context_cue == "card" and "cvv" in kinds else context_cue
    if "pin" in kinds and short_cue in ("card", "id"):
        short_cue = "pin"  # "What's the passcode on the account?", "and the PIN for that card?": a short answer is it
    found += _numbers(tok, found, [c for c in cues if c[0] != "dob"], context_cue, short_cue, dob_cue, year_cue)
    named = "card" in kinds or any(kind == "card" for kind, _ in cues)
    if named or len(ONE_DIGIT.findall(text)) >= 13:
        found += _card_in_pieces(tok, found, named)
    return merge([s for s in found if s.kind in entities])


def _may_hold_pii(text: str) -> bool:
    """False for a turn no rule could find anything in: most turns, which are not worth reading closely.

    Every kind needs one of: a digit or "@"; "at" (a spoken e-mail); a month with a number or ordinal
    (a spoken date); or two digits said in words (the shortest number judged is a 2-digit CVV), which
    takes two number words or one teen or tens word. "One moment", "oh okay", "my second bill" have none.
    """
    if DIGIT_OR_AT.search(text):
        return True
    words = letter_words(text)
    if CLUES.isdisjoint(words):
        return False  # most turns: no number word, month or "at" at all
    numbers = [w for w in words if w in NUMBER_WORDS]
    if len(numbers) > 1 or (numbers and numbers[0] in TWO_DIGIT_WORDS) or "at" in words:
        return True
    return not MONTHS.isdisjoint(words) and (bool(numbers) or not ORDINALS.keys().isdisjoint(words))


def redact_text(text: str, entities: Collection[str] = ENTITIES, context: str = "") -> tuple[str, list[Span]]:
    """text with each span replaced by what it was ("[CARD]"), and the spans (offsets in text).

    Example:
        >>> redact_text("call me on 206 555 0142")[0]
        'call me on [PHONE]'
    """
    spans = find_pii(text, entities, context)
    return apply_spans(text, spans), spans


def redact_utterances(utterances: list[dict], entities: Collection[str] = ENTITIES) -> tuple[list[dict], Counter]:
    """New utterance dicts of one call with text and words redacted, and a Counter of kinds redacted.

    Words covering a span become one word ("[CARD]", first start_s, last end_s, min probability
    or None); spans are widened to whole words so text stays " ".join(words). A span split over
    turns counts once.
    """
    texts = [folded(u.get("text") or "") for u in utterances]  # spans are cut from the text as written
    may = [bool(t) and _may_hold_pii(t) for t in texts]
    speakers = [u.get("speaker") for u in utterances]
    # a turn's cues are read once, however many later turns look back at it (_answered)
    asked = functools.cache(lambda k: _asked(texts[k]))
    # "So that's 20 00 00, and the account number?": the bank was named a turn or two before. Only a turn near an
    # "Account"/"account" needs to know, and a substring test rules most calls out
    account = ["ccount" in t for t in texts]
    bank = _bank_talk(texts, may, account) if any(account) else account
    found = [_find_pii(t, entities, *_answered(texts, speakers, i, may, asked), bank=bank[i]) if may[i] else []
             for i, t in enumerate(texts)]
    continued: list[list[int]] = [[] for _ in texts]
    for block in turn_blocks(utterances, texts, has_card_cue, has_other_cue, may):
        if not may_cross(block, texts):
            continue
        for i, span, is_continuation in _cross_turn(block, texts, entities):
            found[i].append(span)
            if is_continuation:
                continued[i].append(span.start)
    for i, span in _repeated(texts, found, may):
        found[i].append(span)
        continued[i].append(span.start)
    rows, counts = [], Counter()
    for i, utterance in enumerate(utterances):
        row, spans = redact_row(utterance, utterance.get("text") or "", merge(found[i]))
        rows.append(row)
        if spans:
            counts.update(s.kind for s in spans if not any(s.start <= c < s.end for c in continued[i]))
    return rows, counts


def _bank_talk(texts: list[str], may: list[bool], account: list[bool]) -> list[bool]:
    """Per turn: it may hold PII, says or answers an "account", and a bank was named in the CUE_TURNS before."""
    names_bank_at = functools.cache(lambda k: BANK_HINT.search(texts[k].lower()) is not None)
    return [may[i] and any(account[max(i - CUE_TURNS, 0):i + 1])
            and any(map(names_bank_at, range(max(i - CUE_TURNS, 0), i))) for i in range(len(texts))]


# --- numbers -------------------------------------------------------------------------------

def _numbers(tok: Tokens, taken: list[Span], cues, context_cue: str | None, short_cue: str | None,
             dob_cue: bool, year_cue: bool) -> list[Span]:
    """Spans of the runs of digits; without a cue of its own a run takes the context's (short_cue for runs of up to
    8 digits, where a security code asked for beats the card it is on). year_cue: a year said alone, with no cue of
    its own, is a birth year (IDENTITY_WORDS)."""
    spans, last_card = [], None
    for run in runs(tok, covered(tok, [(s.start, s.end) for s in taken])):
        ds = spell(tok, run)
        if not ds:
            continue
        end = ds[-1][2]
        own = nearest(cues, tok, run[0], run[-1])
        cue = own or (short_cue if len(ds) <= 8 else context_cue)
        money = tok.text[:ds[0][1]].rstrip().endswith(("$", "£", "€")) or MONEY_AFTER.match(tok.text, end)
        if money:
            hits = priced(ds, cue, tok.text, dob_cue)
        elif year_cue and not own and len(ds) == 4 and BIRTH_YEAR.fullmatch("".join(d[0] for d in ds)):
            hits = [("dob", 0, 4)]
        else:
            hits = classify(ds, cue, tok.text, dob_cue, lead_oh=tok.words[run[0]] in ("oh", "o"))
        if not hits and not money and last_card and run[0] - last_card[1] <= 4 and 3 <= len(ds) <= 8:
            spans[last_card[0]] = Span("card", spans[last_card[0]].start, end)  # expiry/CVV right after a card
            last_card = (last_card[0], run[-1])
            continue
        last_card = None
        for kind, a, b in hits:
            head, first = run[0] - 1, ds[a][1]
            if kind == "card" and cue == "cvv" and a == 0 and head >= 0 and tok.words[head] in MONTHS:
                first = tok.starts[head]  # "September twenty seven"
            spans.append(Span(kind, first - (tok.text[first - 1:first] in ("+", "(")), ds[b - 1][2]))
            if kind == "card" and b == len(ds):
                last_card = (len(spans) - 1, run[-1])
    return spans


PIECE_GAP = 4  # words between the pieces of a card read in one turn ("4111 1111, sorry, 1111 1111")


def _card_in_pieces(tok: Tokens, taken: list[Span], named: bool) -> list[Span]:
    """A card read in pieces with words between them: consecutive digit runs, at most PIECE_GAP words apart, whose
    digits together are a Luhn-valid 13-19 digits. The words may be any when a card is named (in the turn, or the
    question it answers); else only backchannel ("4111 1111 mhm 1111 1111": both sides of a mono recording)."""
    blocked = covered(tok, [(s.start, s.end) for s in taken]) | counts(tok)  # "and the next four?" says no digit
    pieces = [(run, ds) for run in runs(tok, blocked) if len(ds := spell(tok, run)) >= 3]
    found, i = [], 0
    while i < len(pieces):
        n = len(pieces[i][1])
        for j in range(i + 1, len(pieces)):
            n += len(pieces[j][1])
            # the words between, less backchannel and counts ("great, and the next four?")
            gap = [tok.words[k] for k in range(pieces[j - 1][0][-1] + 1, pieces[j][0][0]) if k not in blocked]
            said = [w for w in gap if w not in EDGE]
            if n > 19 or len(said) > PIECE_GAP or (said and not named) or not CUE_HEADS.isdisjoint(gap):
                break  # "ending 9555, the refund reference is 4065 9434": a cue says the next piece is something else
            if n >= 13 and luhn("".join(d[0] for _, ds in pieces[i:j + 1] for d in ds)):
                found += [Span("card", ds[0][1], ds[-1][2]) for _, ds in pieces[i:j + 1]]
                i = j
                break
        i += 1
    return found


# --- turns ---------------------------------------------------------------------------------

def _cross_turn(block: list[int], texts: list[str], entities):
    """(utterance index, span part, is a continuation) for spans of the joined block that cross a turn, and for
    the other speaker's read-backs between their pieces (pipeline.redact_turns)."""
    context = _block_context(texts, block)
    card_cue = any(has_card_cue(t) for t in [context] + [texts[i] for i in block])
    for i, kind, start, end, more in cross_turn(block, texts, lambda t, c: find_pii(t, entities, c), context, card_cue):
        yield i, Span(kind, start, end), more


def _answered(texts: list[str], speakers: list, i: int, may: list[bool],
              asked: Callable[[int], Asked]) -> tuple[Asked, bool]:
    """The turn that turn i answers (as asked(k) reads turn k), and whether that is the turn just before it: the
    one before it; when that names nothing and says no number ("Sure, one second.", "No problem, take your time."),
    the nearest of the CUE_TURNS before it that does. A DOB cue counts only past short turns ("Hold on." "No problem."):
    dates are common, and a longer turn between may have moved the talk on."""
    for k in range(i - 1, max(i - 1 - CUE_TURNS, -1), -1):
        if may[k] or asked(k)[1]:
            if k < i - 1 and speakers[k] == speakers[i]:
                break  # a question is the other speaker's: this turn goes on from its own
            return asked(k), all(len(texts[j]) <= SHORT_TURN for j in range(k + 1, i))
    return (asked(i - 1) if i else _asked("")), True


SHORT_TURN = 30  # characters: "Hold on.", "No problem, take your time."
REPEATED_DIGITS = 5  # a read-back this long repeats a number; "ending 1111" (a card's last four) may stay


def _repeated(texts: list[str], found: list[list[Span]], may: list[bool]):
    """(turn, span) of each later read-back of a card, phone or SSN found in a turn: "That's 123 45 6789, thank
    you" after the caller said it. Runs of REPEATED_DIGITS or more of its digits, in the CUE_TURNS after it."""
    for i, spans in enumerate(found):
        for span in spans:
            if span.kind in READ_BACK_KINDS:
                number = digits(texts[i][span.start:span.end])
                later = [k for k in range(i + 1, min(i + 1 + CUE_TURNS, len(texts))) if may[k]]
                shortest = len(number) if len(number) <= 8 else max(REPEATED_DIGITS, (len(number) + 1) // 2)
                for k, start, end in read_backs(texts, later, number, shortest):
                    yield k, Span(span.kind, start, end)


def _block_context(texts: list[str], block: list[int]) -> str:
    """What a block answers: a card cue in the other speaker's turns read through ("and the rest of the card?");
    else the turn before it; when that has no cue, the nearest of the CUE_TURNS before it with a card cue ("I'd
    like to pay by card" before "of course, whenever you're ready")."""
    first = block[0]
    inside = [texts[k] for k in range(first + 1, block[-1]) if k not in block]
    previous = next((t for t in inside if has_card_cue(t)), texts[first - 1] if first else "")
    for k in range(first - 2, max(first - 2 - CUE_TURNS, -1), -1):
        if has_card_cue(texts[k]):
            return previous if find_cues(cue_words(previous)) else texts[k]
    return previous
