"""PII out of a call's metadata (calls.extra) and out of the errors that quote bad input.

Each case is a shape a CRM export or a vendor's transcript really takes; the card is the public test
number 4111 1111 1111 1111 (or 5555 5555 5555 4444), so "no 4111/5555 left" is the truth to hold to.
"""
from __future__ import annotations

import json

import pytest

from pipeline.redact import ENTITIES
from pipeline.redact_meta import quoted, redact_extras
from pipeline.transcripts import Reading, _checked

WORDS = [{"word": w, "start": 0.5 * i, "end": 0.5 * i + 0.4} for i, w in enumerate(["5555", "5555", "5555", "4444"])]
CASES = {
    "keypad entries, one digit each": ({"ivr": {"dtmf": list("4111111111111111")}}, "ivr"),
    "keypad entries in groups": ({"keypad": ["4111", "1111", "1111", "1111"]}, "keypad"),
    "as numbers": ({"keypad": [4111, 1111, 1111, 1111]}, "keypad"),
    "a vendor's per-word list": ({"words": WORDS}, "words"),
    "a card glued to an order number": ({"notes": "Order 58213: 4111111111111111"}, "notes"),
    "a whole transcript in one field": ({"transcript": "agent: can I take the card number? customer: 4111 1111 "
                                                       "agent: mhm customer: 1111 1111 agent: thank you"}, "transcript"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_card_in_metadata_is_not_stored(name):
    extra, key = CASES[name]
    calls, found = redact_extras([{"call_id": "c-1", "extra": json.dumps(extra)}], ENTITIES)
    stored = json.loads(calls[0]["extra"])
    assert found == {"c-1": 1}
    assert "[CARD]" in stored[key]
    assert not any(number in calls[0]["extra"] for number in ("4111", "5555", "4444"))


def test_a_whole_transcript_keeps_its_labels_and_other_words():
    extra = {"transcript": "agent: can I take the card number? customer: 4111 1111 agent: mhm customer: 1111 1111"}
    calls, _ = redact_extras([{"call_id": "c-1", "extra": json.dumps(extra)}], ENTITIES)
    assert json.loads(calls[0]["extra"]) == {
        "transcript": "agent: can I take the card number? customer: [CARD] agent: mhm customer: [CARD]"}


def test_a_key_that_is_a_card_number_is_redacted():
    calls, found = redact_extras([{"call_id": "c-1", "extra": json.dumps({"4012888888881881": "paid"})}], ENTITIES)
    assert json.loads(calls[0]["extra"]) == {"[CARD]": "paid"} and found == {"c-1": 1}


def test_metadata_without_pii_is_kept_as_it_is():
    extra = {"crm_case": "X-12", "last4": "1111", "items": [2, 3], "vip": True, "words": WORDS[:2], "none": None,
             "card_masked": "411111******1111"}  # first six and last four: what PCI lets a merchant keep
    call = {"call_id": "c-1", "extra": json.dumps(extra)}
    assert redact_extras([call], ENTITIES) == ([call], {})


def test_quoted_input_carries_no_pii():
    assert quoted("paid with 4111 1111 1111 1111") == "'paid with [CARD]'"
    assert quoted("x" * 100) == repr("x" * 60 + "…")


def test_a_bad_timestamp_holding_a_card_is_named_without_it():
    doc = {"call_id": "t-1", "started_at": "4111 1111 1111 1111", "utterances": []}
    with pytest.raises(ValueError) as caught:
        _checked(json.dumps(doc).encode(), "t-1.json", Reading())
    assert "started_at" in str(caught.value) and "[CARD]" in str(caught.value)
    assert "4111" not in str(caught.value)
