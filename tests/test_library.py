"""The shipped signal library: its own examples hold, and on the demo scripts it finds exactly what was scripted."""
from collections import Counter

import pytest
import yaml

from conftest import ROOT
from pipeline.signals import load_signals
from pipeline.tag import Tagger, tag_calls
from pipeline.transcripts import load_transcripts

SCRIPT = yaml.safe_load((ROOT / "data/demo_script.yaml").read_text())


@pytest.fixture(scope="module")
def tagger():
    return Tagger(load_signals(ROOT / "signals"))


def test_library_is_a_real_contact_centre_library(tagger):
    signals = tagger.library.signals
    assert len(signals) >= 30
    assert set(SCRIPT["signal_ids"]) <= {s.id for s in signals}
    for s in signals:
        assert s.description and len(s.examples) >= 3 and len(s.counter_examples) >= 3, s.id
        assert s.speaker == SCRIPT["signal_ids"].get(s.id, s.speaker), f"{s.id}: speaker scope differs from the script's"
    assert len(tagger.library.categories) >= 4


@pytest.mark.parametrize("text, speaker, signal", [
    ("no I don't need anything else thanks", "customer", "thanks"),   # courtesy opens a sentence
    ("no that's not everything cheers", "customer", "thanks"),
    ("no I don't want to cancel my contract thanks", "customer", "thanks"),
    ("I don't need any more help thank you bye", "customer", "thanks"),
    ("not a problem enjoy the rest of your day", "agent", "closing"),  # a set phrase, no negation
    ("if there's nothing else have a great day", "agent", "closing"),  # closing: negation ignored
    ("not to worry I'd like a refund though", "customer", "refund_request"),
])
def test_what_a_negation_before_a_courtesy_does_not_reach(tagger, text, speaker, signal):
    hits, negated = tagger.match(text, speaker)
    assert signal in {h.signal_id for h in hits} and signal not in {n.signal_id for n in negated}


@pytest.mark.parametrize("text, speaker, signal", [
    ("I don't appreciate you speaking to me like that", "customer", "thanks"),
    ("no I don't want to cancel my contract thanks", "customer", "cancel_intent"),  # (and the thanks fires)
])
def test_a_negation_still_reaches_past_courtesy_words_it_governs(tagger, text, speaker, signal):
    hits, negated = tagger.match(text, speaker)
    assert signal not in {h.signal_id for h in hits} and signal in {n.signal_id for n in negated}


def test_every_example_and_counter_example_holds(tagger):
    assert tagger.check_examples() == []


def test_demo_scripts_signals_found_exactly(tagger):
    """Truth is the script's per-line annotation; the transcripts are the same lines with their times."""
    truth = {(call["call_id"], i, sig) for call in SCRIPT["calls"]
             for i, line in enumerate(call["lines"]) for sig in line.get("signals", [])}
    calls, _, _, failures = load_transcripts(ROOT / "data/demo_transcripts", set())
    assert failures == [] and len(calls) == len(SCRIPT["calls"])
    for call in calls:  # the transcripts are the scripts, line for line
        lines = next(c["lines"] for c in SCRIPT["calls"] if c["call_id"] == call.call["call_id"])
        assert [u["speaker"] for u in call.utterances] == [line["speaker"] for line in lines]
    utterances = [u for c in calls for u in c.utterances]
    hits, _ = tag_calls(tagger, utterances, {c.call["call_id"]: c.call["duration_s"] for c in calls})
    found = {(h["call_id"], h["utt_idx"], h["signal_id"]) for h in hits}
    per_signal = {}
    for sig in sorted({t[2] for t in truth} | {f[2] for f in found}):
        t = {x for x in truth if x[2] == sig}
        f = {x for x in found if x[2] == sig}
        per_signal[sig] = (len(t & f) / len(f) if f else 1.0, len(t & f) / len(t) if t else 1.0)
    assert {s: pr for s, pr in per_signal.items() if pr != (1.0, 1.0)} == {}, (
        f"missed: {sorted(truth - found)}; extra: {sorted(found - truth)}")
    # the rising problem is no signal: topic discovery has to find it (tests/test_topics_flow.py)
    topics = Counter(line.get("topic") for call in SCRIPT["calls"] for line in call["lines"])
    assert topics["app crash after update"] >= 4


def test_prefilter_never_changes_an_answer(tagger):
    """Skipping turns that cannot match (see pipeline/tag_lexicon.py) gives the answers of matching every turn."""
    calls, _, _, _ = load_transcripts(ROOT / "data/demo_transcripts", set())
    texts = [t for s in tagger.library.signals for t in s.examples + s.counter_examples]
    texts += [u["text"] for c in calls for u in c.utterances]
    for text in texts:
        for variant in (text, text.lower().replace(",", "").replace(".", "").replace("?", ""), text.upper()):
            for speaker in ("agent", "customer", "unknown"):
                assert tagger.match(variant, speaker) == tagger.match(variant, speaker, prefilter=False), (
                    variant, speaker)
