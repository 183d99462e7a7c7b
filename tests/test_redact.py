"""Redaction takes every card, SSN, phone, email and date of birth out, and nothing else.

The corpus (tests/data/redaction_cases.yaml) says, for each utterance, the exact
substrings that must go; the expected output is the text with each one replaced by
"[KIND]", so span boundaries are pinned too. Near-misses must come back unchanged.
"""
from __future__ import annotations

import copy
import doctest
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import redact
from pipeline.redact import ENTITIES, Span, find_pii, luhn, redact_text, redact_utterances

CASES = yaml.safe_load((Path(__file__).parent / "data" / "redaction_cases.yaml").read_text())["cases"]
DIALOGUES = yaml.safe_load((Path(__file__).parent / "data" / "redaction_dialogues.yaml").read_text())["dialogues"]
DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = set(DIGIT_WORDS + TEENS + TENS[2:]) | {"oh", "o", "double", "triple", "hundred", "thousand"} | set(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth".split())


def expected_output(case: dict) -> str:
    text = case["text"]
    for secret in case["expect"]:
        assert secret["secret"] in text, f"corpus error: {secret['secret']!r} not in {text!r}"
        text = text.replace(secret["secret"], f"[{secret['kind'].upper()}]", 1)
    return text


def secret_spans(case: dict) -> list[Span]:
    """Where each secret sits in the original text (searched left to right, like expected_output)."""
    spans, pos = [], 0
    for secret in case["expect"]:
        start = case["text"].index(secret["secret"], pos)
        spans.append(Span(secret["kind"], start, start + len(secret["secret"])))
        pos = start + len(secret["secret"])
    return spans


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:60] for c in CASES])
def test_corpus_case(case):
    out, spans = redact_text(case["text"], context=case.get("context", ""))
    assert out == expected_output(case)
    assert spans == secret_spans(case)


def test_corpus_is_big_and_varied():
    kinds = [s["kind"] for c in CASES for s in c["expect"]]
    assert len(CASES) >= 80
    assert set(kinds) == set(ENTITIES)
    assert sum(not c["expect"] for c in CASES) >= 20  # near-misses


def test_corpus_recall_and_precision_per_entity():
    secrets, covered, spans_found, true_spans = Counter(), Counter(), Counter(), Counter()
    near_miss_spans = 0
    for case in CASES:
        truth = secret_spans(case)
        spans = find_pii(case["text"], context=case.get("context", ""))
        for t in truth:
            secrets[t.kind] += 1
            covered[t.kind] += any(s.kind == t.kind and s.start <= t.start and t.end <= s.end for s in spans)
        for s in spans:
            spans_found[s.kind] += 1
            true_spans[s.kind] += any(t.kind == s.kind and t.start < s.end and s.start < t.end for t in truth)
        near_miss_spans += 0 if truth else len(spans)
    assert covered == secrets  # recall 1.0 for every entity
    assert true_spans == spans_found == secrets  # precision 1.0, and one span per secret
    assert near_miss_spans == 0


def test_entities_limit_what_is_redacted():
    text = "Card 4111 1111 1111 1111, email anna.brooks@gmail.com"
    assert redact_text(text, entities=("email",))[0] == "Card 4111 1111 1111 1111, email [EMAIL]"
    assert redact_text(text, entities=("card",))[0] == "Card [CARD], email anna.brooks@gmail.com"


def test_dob_needs_a_cue_unless_the_year_is_an_adults_birth_year():
    recent = "It arrives on the fourth of March."
    assert redact_text(recent)[0] == recent
    assert redact_text(recent, context="And your date of birth?")[0] == "It arrives on the [DOB]."
    assert redact_text("The update came out on March 3rd 2026.")[0] == "The update came out on March 3rd 2026."
    # Whisper lost the question ("birth date" heard as something else): the year still says what it is.
    assert redact_text("The fourth of March, nineteen eighty six.")[0] == "The [DOB]."
    assert redact_text("Sure, it's the fourth of March 1986 and the postcode")[0] == "Sure, it's the [DOB] and the postcode"


def test_a_card_number_whisper_looped_on_is_redacted_whole():
    """Seen on the demo call c-0001: the card "four two four two ..." came out as one 45-digit block."""
    looped = "put it on my new mirror, number 442424242424242424242424242424242424242424242,"
    assert redact_text(looped)[0] == "put it on my new mirror, number [CARD],"


def test_a_non_luhn_run_is_a_card_only_with_a_card_cue():
    assert redact_text("it's 4242 4242 4242 4241")[0] == "it's 4242 4242 4242 4241"
    assert redact_text("it's 4242 4242 4242 4241", context="what's the card number?")[0] == "it's [CARD]"


def test_a_looping_transcript_is_redacted_whole():
    # Whisper sometimes repeats one phrase for minutes; one huge run must neither recurse deeply nor leak
    assert redact_text("4242 4242 4242 4242, " * 300)[0] == "[CARD], " * 300
    assert redact_text("zero " * 64)[0] == "[CARD] "  # no card starts with 0: one run of 20+ digits, gone whole


def test_docstring_examples_run():
    assert doctest.testmod(redact).failed == 0


# --- redact_utterances ---------------------------------------------------------------------

def utterance(speaker: str, text: str, t0: float) -> dict:
    words = [{"word": w, "start_s": round(t0 + i * 0.4, 1), "end_s": round(t0 + i * 0.4 + 0.3, 1),
              "probability": 0.9 - i / 100} for i, w in enumerate(text.split(" "))]
    return {"speaker": speaker, "start_s": t0, "end_s": words[-1]["end_s"], "text": text, "words": words}


def test_words_of_a_card_become_one_word_with_its_times():
    call = [utterance("agent", "What's the card number?", 0.0),
            utterance("customer", "It's 4111 1111 1111 1111, thanks.", 2.0)]
    rows, counts = redact_utterances(call)
    assert rows[1]["text"] == "It's [CARD] thanks."
    assert rows[1]["words"] == [
        call[1]["words"][0],
        {"word": "[CARD]", "start_s": 2.4, "end_s": 3.9, "probability": 0.86},
        call[1]["words"][5],
    ]
    assert rows[1]["text"] == " ".join(w["word"] for w in rows[1]["words"])
    assert rows[0] == call[0]
    assert counts == {"card": 1}


def test_inputs_are_untouched():
    call = [utterance("customer", "my email is anna.brooks@gmail.com", 0.0)]
    call[0]["words"][3]["probability"] = None
    before = copy.deepcopy(call)
    rows, _ = redact_utterances(call)
    assert call == before
    assert rows[0]["words"][3] == {"word": "[EMAIL]", "start_s": 1.2, "end_s": 1.5, "probability": None}
    assert rows[0] is not call[0] and rows[0]["words"][0] is not call[0]["words"][0]


def test_card_split_over_two_turns_of_one_speaker():
    call = [utterance("agent", "Go ahead with the card number.", 0.0),
            utterance("customer", "It's 4242 4242", 3.0),
            utterance("customer", "4242 4242.", 5.0),
            utterance("agent", "Thank you.", 7.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows] == ["Go ahead with the card number.", "It's [CARD]", "[CARD]", "Thank you."]
    assert rows[1]["words"][1] == {"word": "[CARD]", "start_s": 3.4, "end_s": 4.1, "probability": 0.88}
    assert counts == {"card": 1}


def test_card_split_over_turns_with_a_backchannel_between():
    call = [utterance("customer", "four one one one, one one one one", 0.0),
            utterance("agent", "Mhm.", 4.0),
            utterance("customer", "one one one one, one one one one", 5.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows] == ["[CARD]", "Mhm.", "[CARD]"]
    assert counts == {"card": 1}


def test_card_read_in_fours_with_the_agent_prompting_for_each_piece():
    call = [utterance("agent", "What is the long number on the card?", 0.0),
            utterance("customer", "four one one one", 3.0),
            utterance("agent", "uh huh, and the next four?", 5.0),
            utterance("customer", "one one one one", 7.0),
            utterance("agent", "and then?", 9.0),
            utterance("customer", "one one one one", 10.0),
            utterance("agent", "and the last four", 12.0),
            utterance("customer", "one one one one", 14.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows] == ["What is the long number on the card?", "[CARD]", "uh huh, and the next four?",
                                         "[CARD]", "and then?", "[CARD]", "and the last four", "[CARD]"]
    assert rows[1]["words"] == [{"word": "[CARD]", "start_s": 3.0, "end_s": 4.5, "probability": 0.87}]
    assert rows[7]["words"] == [{"word": "[CARD]", "start_s": 14.0, "end_s": 15.5, "probability": 0.87}]
    assert [rows[i] for i in (0, 2, 4, 6)] == [call[i] for i in (0, 2, 4, 6)]
    assert counts == {"card": 1}


def test_card_read_in_halves_with_the_agent_asking_for_the_rest():
    call = [utterance("agent", "Can I have the card number?", 0.0),
            utterance("customer", "4111 1111", 2.0),
            utterance("agent", "okay, and the rest?", 4.0),
            utterance("customer", "1111 1111", 6.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows] == ["Can I have the card number?", "[CARD]", "okay, and the rest?", "[CARD]"]
    assert rows[3]["words"] == [{"word": "[CARD]", "start_s": 6.0, "end_s": 6.7, "probability": 0.89}]
    assert counts == {"card": 1}


def test_card_read_back_by_the_agent_between_its_pieces_is_redacted_too():
    call = [utterance("agent", "Can I have the card number?", 0.0),
            utterance("customer", "4111", 2.0),
            utterance("agent", "mhm, 4111, go on", 3.0),
            utterance("customer", "1111 1111 1111", 5.0)]
    rows, counts = redact_utterances(call)
    # the comma goes with its word, as in "It's [CARD] thanks.": text stays " ".join(words)
    assert [r["text"] for r in rows] == ["Can I have the card number?", "[CARD]", "mhm, [CARD] go on", "[CARD]"]
    assert rows[2]["words"] == [call[2]["words"][0], {"word": "[CARD]", "start_s": 3.4, "end_s": 3.7, "probability": 0.89},
                                *call[2]["words"][2:]]
    assert counts == {"card": 1}  # one card, in three turns
    bare = [{"speaker": u["speaker"], "text": u["text"]} for u in call]
    assert [r["text"] for r in redact_utterances(bare)[0]] == [
        "Can I have the card number?", "[CARD]", "mhm, [CARD], go on", "[CARD]"]


def test_a_card_asked_for_a_few_turns_back_is_the_context_of_its_pieces():
    # one digit misheard (not Luhn): only the card cue says what the 16 digits are
    call = [utterance("customer", "I'd like to pay the balance by card.", 0.0),
            utterance("agent", "Of course, whenever you're ready.", 3.0),
            utterance("customer", "4111 1111", 5.0),
            utterance("agent", "and the rest of the card?", 7.0),
            utterance("customer", "1111 1112", 9.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows][2:] == ["[CARD]", "and the rest of the card?", "[CARD]"]
    assert counts == {"card": 1}


def test_naming_the_card_ends_a_block_that_is_not_reading_one():
    call = [utterance("customer", "my order number is 12345", 0.0),
            utterance("agent", "and the card?", 3.0),
            utterance("customer", "4111 1111", 5.0),
            utterance("agent", "mhm", 7.0),
            utterance("customer", "1111 1112", 8.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows] == ["my order number is 12345", "and the card?", "[CARD]", "mhm", "[CARD]"]
    assert counts == {"card": 1}


def test_a_piece_begun_with_yes_and_joins_the_card_and_keeps_those_words():
    call = [utterance("agent", "What's the card number?", 0.0),
            utterance("customer", "It's 4242 4242", 2.0),
            utterance("agent", "4242 4242, and then?", 4.0),
            utterance("customer", "yes, and 4242 4242.", 6.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows] == ["What's the card number?", "It's [CARD]", "[CARD] and then?",
                                         "yes, and [CARD]"]
    assert rows[3]["words"] == [*call[3]["words"][:2], {"word": "[CARD]", "start_s": 6.8, "end_s": 7.5,
                                                         "probability": 0.87}]
    assert counts == {"card": 1}


# Numbers said over turns that are no PII, each (speaker, text) in turn. Ids are not redacted (an id cue only
# says a run is no phone): read in pieces, an order number stays as it does in one turn.
KEPT_OVER_TURNS = {
    "counts answered": [("agent", "how many lines do you need?"), ("customer", "two"),
                        ("agent", "and how many handsets?"), ("customer", "four")],
    "an order number read in pieces": [("agent", "what's your order number"), ("customer", "4567 8912"),
                                       ("agent", "okay, and the rest?"), ("customer", "3456 7890")],
    "prices": [("agent", "that's 49 99 a month"), ("customer", "and the setup?"), ("agent", "19 99")],
}


@pytest.mark.parametrize("case", sorted(KEPT_OVER_TURNS))
def test_numbers_over_turns_that_are_no_pii_are_kept(case):
    call = [utterance(speaker, text, 2.0 * i) for i, (speaker, text) in enumerate(KEPT_OVER_TURNS[case])]
    assert redact_utterances(call) == (call, Counter())


def test_a_luhn_valid_order_number_read_in_pieces_is_a_card_as_in_one_turn():
    call = [utterance("agent", "what's your order number", 0.0),
            utterance("customer", "4111 1111", 2.0),
            utterance("agent", "okay, and the rest?", 4.0),
            utterance("customer", "1111 1111", 6.0)]
    assert find_pii("4111 1111 1111 1111", context="what's your order number") == [Span("card", 0, 19)]
    assert [r["text"] for r in redact_utterances(call)[0]][1:] == ["[CARD]", "okay, and the rest?", "[CARD]"]


@pytest.mark.parametrize("dialogue", DIALOGUES, ids=[d["name"] for d in DIALOGUES])
def test_dialogue_case(dialogue):
    """tests/data/redaction_dialogues.yaml: each turn comes back as its third element says, else unchanged."""
    rows, _ = redact_utterances([{"speaker": t[0], "text": t[1]} for t in dialogue["turns"]])
    assert [r["text"] for r in rows] == [t[-1] for t in dialogue["turns"]]


def test_phone_split_at_a_pause_is_redacted_in_both_turns():
    call = [utterance("agent", "What's the best phone number?", 0.0),
            utterance("customer", "It's two oh six,", 2.0),
            utterance("customer", "five five five, zero one four two.", 4.0)]
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows[1:]] == ["It's [PHONE]", "[PHONE]"]
    assert counts == {"phone": 1}


def test_context_is_the_previous_utterance():
    call = [utterance("agent", "And your date of birth?", 0.0),
            utterance("customer", "The second of October, nineteen ninety.", 2.0),
            utterance("customer", "And the third of November is my delivery date.", 5.0)]
    rows, counts = redact_utterances(call)
    assert rows[1]["text"] == "The [DOB]"
    assert rows[2]["text"] == call[2]["text"]
    assert counts == {"dob": 1}


def test_utterances_without_words_are_redacted_on_text():
    rows, counts = redact_utterances([{"speaker": "customer", "text": "call me on 206 555 0142", "words": []}])
    assert rows == [{"speaker": "customer", "text": "call me on [PHONE]", "words": []}]
    assert counts == {"phone": 1}


def test_words_that_do_not_spell_the_text_are_refused():
    bad = utterance("customer", "it's 4111 1111 1111 1111", 0.0)
    bad["words"] = bad["words"][:2]
    with pytest.raises(ValueError, match="do not spell"):
        redact_utterances([bad])


# --- properties ----------------------------------------------------------------------------

@st.composite
def luhn_number(draw) -> str:
    body = draw(st.text("0123456789", min_size=15, max_size=15))
    return next(body + d for d in "0123456789" if luhn(body + d))


@st.composite
def spoken(draw, number: str) -> str:
    """number read the way tiny.en writes it: groups of 1-5, each as digits, digit words or pair words."""
    groups, i = [], 0
    while i < len(number):
        size = draw(st.integers(1, 5))
        groups.append(number[i:i + size])
        i += size
    parts = [render_group(draw, g, last=k == len(groups) - 1) for k, g in enumerate(groups)]
    seps = draw(st.lists(st.sampled_from([" ", ", ", ". ", "-", " - ", "... ", " \u2026 ", ","]),
                         min_size=len(parts), max_size=len(parts)))
    return "".join(p + s for p, s in zip(parts, seps))[:-len(seps[-1])]


def render_group(draw, group: str, last: bool) -> str:
    style = draw(st.sampled_from(["digits", "words", "pair"]))
    if style == "digits":
        return group
    if style == "pair" and len(group) == 2 and group[0] != "0" and (group[1] != "0" or last):
        # "forty" then "two" would be heard as 42: a bare tens word ends the number
        if group[0] == "1":
            return TEENS[int(group[1])]
        return TENS[int(group[0])] + ("" if group[1] == "0" else draw(st.sampled_from([" ", "-"])) + DIGIT_WORDS[
            int(group[1])])
    words, i = [], 0
    while i < len(group):
        same = len(group) - i - len(group[i:].lstrip(group[i]))
        repeat = draw(st.integers(1, min(same, 3)))
        word = draw(st.sampled_from(["oh", "zero"])) if group[i] == "0" else DIGIT_WORDS[int(group[i])]
        words.append({1: word, 2: f"double {word}", 3: f"triple {word}"}[repeat] if repeat > 1 else word)
        i += repeat
    return " ".join(words)


@settings(max_examples=400, deadline=None, database=None)
@given(st.data(), luhn_number(), st.sampled_from(["", "sure it's ", "the number is ", "okay so "]),
       st.sampled_from(["", ".", " thanks", ", is that okay?"]))
def test_any_rendering_of_a_luhn_valid_number_is_redacted(data, number, prefix, suffix):
    said = data.draw(spoken(number))
    out, _ = redact_text(prefix + said + suffix)
    assert out == prefix + "[CARD]" + suffix
    assert not re.search(r"\d{4}", out)


AGENT_PROMPTS = ["mhm", "okay, and the rest?", "and then?", "the next four?", "go on", "uh huh, keep going", "yes",
                 "and the last four", "Okay."]


def pieces(draw, number: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(1, len(number) - 1), min_size=1, max_size=min(4, len(number) - 1))))
    return [number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)])]


def read_in_pieces(draw, question: str, number: str) -> list[dict]:
    call = [{"speaker": "agent", "text": question}]
    for k, piece in enumerate(pieces(draw, number)):
        if k:
            call.append({"speaker": "agent", "text": draw(st.sampled_from(AGENT_PROMPTS))})
        call.append({"speaker": "customer", "text": draw(spoken(piece))})
    return call


@settings(max_examples=300, deadline=None, database=None)
@given(st.data(), luhn_number(), st.sampled_from(["What's the card number?", "And the long number on the card?", "Okay."]))
def test_a_card_read_in_pieces_with_prompts_between_is_redacted(data, number, question):
    call = read_in_pieces(data.draw, question, number)
    rows, counts = redact_utterances(call)
    assert [r["text"] for r in rows if r["speaker"] == "customer"] == ["[CARD]"] * (len(call) // 2)
    assert [r["text"] for r in rows if r["speaker"] == "agent"] == [u["text"] for u in call if u["speaker"] == "agent"]
    assert counts == {"card": 1}


@settings(max_examples=300, deadline=None, database=None)
@given(st.data(), st.text("0123456789", min_size=2, max_size=9),
       st.sampled_from(["How many do you need?", "What's the price?", "What time works?", "What's the card number?"]))
def test_short_numbers_read_in_pieces_are_kept(data, number, question):
    call = read_in_pieces(data.draw, question, number)
    assert redact_utterances(call) == (call, Counter())


VOCAB = ["card", "number", "is", "my", "the", "of", "date", "birth", "born", "phone", "order", "social", "expiry",
         "security", "code", "at", "dot", "com", "gmail", "underscore", "March", "July", "oh", "double", "forty",
         "two", "nineteen", "eighty", "six", "first", "fourth", "1986", "4242", "4111", "1111", "555", "0142",
         "123-45-6789", "$", "@", "[CARD]", "[DOB]", "thanks", "slash", "um", "hundred", "thousand", "and", "+44"]


@settings(max_examples=600, deadline=None, database=None)
@given(st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=4)), max_size=30),
       st.lists(st.sampled_from([" ", ", ", ". ", "-", "/", "\n", ""]), min_size=30, max_size=30),
       st.sampled_from(["", "What's your date of birth?", "And the card number?", "the order number please"]))
def test_redaction_never_raises_and_is_idempotent(words, seps, context):
    text = "".join(w + s for w, s in zip(words, seps))
    once, _ = redact_text(text, context=context)
    assert redact_text(once, context=context)[0] == once


PLAIN = ["card", "number", "please", "the", "my", "date", "birth", "born", "birthday", "phone", "social", "security",
         "expiry", "code", "cvv", "order", "account", "March", "May", "July", "email", "gmail", "com", "dollars",
         "mobile", "visa", "zip", "call", "me", "sure", "it's", "I'm", "okay", "back", "digits", "on"]


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.one_of(st.sampled_from(PLAIN), st.from_regex(r"[A-Za-z']{1,8}", fullmatch=True)), max_size=25),
       st.lists(st.sampled_from([" ", ", ", ". ", "? ", " - "]), min_size=25, max_size=25),
       st.sampled_from(["", "Can I have your date of birth?", "What's the card number?"]))
def test_text_without_numbers_or_email_shapes_is_unchanged(words, seps, context):
    text = "".join(w + s for w, s in zip(words, seps))
    lowered = set(re.findall(r"[a-z']+", text.lower()))
    if lowered & (NUMBER_WORDS | {"at"}):
        return  # outside the property: number words or a spoken "at"
    assert redact_text(text, context=context) == (text, [])


def test_numbers_after_a_money_sign_are_all_read_once():
    """Found by hypothesis: after "$" only a card window was looked for, so the SSN after it stayed, and the
    second pass (the archive is redacted again when the rules change) took it: a first pass must leave none."""
    text = "$ 123-45-6789 123-45-6789 123-45-6789 "
    once, _ = redact_text(text)
    assert not re.search(r"\d{3}-\d{2}-\d{4}|45-6789", once) and redact_text(once)[0] == once


def test_digit_like_symbols_are_not_digits():
    """Found by hypothesis: '²' passes str.isdigit() but is no digit int() can read; it must not crash the call."""
    assert redact_text("oh ² 1986") == ("oh ² 1986", [])


QUICK = VOCAB + ["one", "seven", "twenty", "may", "second", "seven_two", "twenty\u2014seven", "one's", "o"]


@settings(max_examples=1500, deadline=None, database=None)
@given(st.lists(st.one_of(st.sampled_from(QUICK), st.text(max_size=3)), max_size=8),
       st.lists(st.sampled_from([" ", ", ", ". ", "-", "/", "\u2014", "_", ""]), min_size=8, max_size=8),
       st.sampled_from(["", "What's your date of birth?", "And the security code?", "the order number please",
                        "Can I take the expiry?"]))
def test_turns_the_quick_check_skips_hold_nothing(words, seps, context):
    """Most turns are skipped before they are read closely; reading them closely must find nothing in them."""
    text = "".join(w + s for w, s in zip(words, seps))
    if not redact._may_hold_pii(text):
        assert redact._find_pii(text, ENTITIES, redact._asked(context)) == []


@pytest.mark.parametrize("text,context,kind", [
    ("nineteen", "And the security code?", "card"),        # one word, two digits: a CVV
    ("twenty\u2014seven", "Can I take the expiry?", "card"),  # joined by a dash the word split missed before
    ("the fourth of march", "What's your date of birth?", "dob"),
    ("anna at gmail dot com", "", "email"),
])
def test_short_turns_that_hold_pii_are_read(text, context, kind):
    assert redact._may_hold_pii(text)
    assert [s.kind for s in find_pii(text, context=context)] == [kind]


@pytest.mark.parametrize("text", ["one moment please", "oh okay", "that's my second bill", "may I ask why"])
def test_everyday_turns_with_one_number_word_are_skipped(text):
    assert not redact._may_hold_pii(text)


def test_symbols_of_other_keyboards_are_read_as_ascii_and_kept_as_written():
    """A vendor's transcript typed with a non-breaking hyphen or a full-width keyboard: the number goes, and what
    is kept is the turn as written, not the ASCII it was read as."""
    turns = [{"speaker": "agent", "text": "And a phone number for you?"},
             {"speaker": "customer", "text": "２０６－５５５－０１４２，ｔｈａｎｋｓ"},
             {"speaker": "customer", "text": "or my SSN 078\u201105\u20111120 if you need it"}]
    clean, counts = redact_utterances(turns)
    assert [u["text"] for u in clean] == ["And a phone number for you?", "[PHONE]，ｔｈａｎｋｓ",
                                          "or my SSN [SSN] if you need it"]
    assert counts == {"phone": 1, "ssn": 1}


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(["GB", "DE", "FR", "NL", "IE", "ES"]),
       st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4),
       st.text("0123456789", min_size=10, max_size=18), st.booleans(), st.booleans())
def test_an_iban_with_right_check_digits_is_bank_details_however_it_is_spaced_or_cased(country, bank, account,
                                                                                      grouped, lower):
    """ISO 13616: the check digits are 98 minus the IBAN (with 00 for them, country and checks moved to the end,
    letters as 10..35) mod 97; computed here, not by the code under test."""
    body = bank + account
    number = int("".join(str(int(c, 36)) for c in body + country + "00"))
    iban = f"{country}{98 - number % 97:02d}{body}"
    written = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if grouped else iban
    written = written.lower() if lower else written
    assert redact_text(f"the account to pay into is {written}, thanks") == (
        "the account to pay into is [BANK], thanks", [Span("bank", 27, 27 + len(written))])


def test_an_account_number_is_a_bank_account_only_where_a_bank_is_named():
    """"Account" alone is ours (kept, as an order number is); with a bank named in the call's last few turns it is
    a bank account, whose number goes, and its read-back with it."""
    ours = [{"speaker": "agent", "text": "Can I take your account number?"},
            {"speaker": "customer", "text": "It's 45512345."}]
    assert [u["text"] for u in redact_utterances(ours)[0]] == ["Can I take your account number?", "It's 45512345."]
    theirs = [{"speaker": "agent", "text": "Which bank should the refund go to?"},
              {"speaker": "customer", "text": "Barclays."},
              {"speaker": "agent", "text": "And the account number?"},
              {"speaker": "customer", "text": "It's 45512345."},
              {"speaker": "agent", "text": "So 45512345, lovely."}]
    clean, counts = redact_utterances(theirs)
    assert [u["text"] for u in clean][3:] == ["It's [BANK].", "So [BANK], lovely."]
    assert counts == {"bank": 1}
