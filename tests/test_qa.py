"""Call metrics, scorecards and flags on the demo calls equal what their scripts imply (data/demo_truth.py)."""
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from pipeline import qa
from pipeline.metrics import metrics_of as metrics_of_rows
from pipeline.rubric import load_qa
from pipeline.signals import load_signals
from pipeline.tag import Tagger, tag_calls
from pipeline.transcripts import load_transcripts

sys.path.insert(0, str(ROOT / "data"))
import demo_truth  # noqa: E402


@pytest.fixture(scope="module")
def demo():
    """The demo transcripts through enrich, tag, score and flag, as the nightly run does it."""
    library = load_signals(ROOT / "signals")
    rules = load_qa(ROOT / "signals", library)
    calls, _, _, failures = load_transcripts(ROOT / "data/demo_transcripts", set())
    assert not failures
    rows = [c.call for c in calls]
    utterances = qa.add_sentiment([u for c in calls for u in c.utterances])
    hits, categories = tag_calls(Tagger(library), utterances, {c["call_id"]: c["duration_s"] for c in rows})
    return qa.assess(rules, library, rows, utterances, hits, categories, "run-1"), utterances


def test_metrics_match_the_scripted_timings(demo):
    out, _ = demo
    for row in out["call_metrics"]:
        truth = demo_truth.timing(row["call_id"])
        got = {k: row[k] for k in truth}
        assert got == pytest.approx(truth, abs=1e-6), row["call_id"]


def test_talk_time_is_the_time_each_side_speaks(demo):
    out, _ = demo
    for row in out["call_metrics"]:
        ls = demo_truth.lines(row["call_id"])
        agent = sum(line["end_s"] - line["start_s"] for line in ls if line["speaker"] == "agent")
        customer = sum(line["end_s"] - line["start_s"] for line in ls if line["speaker"] == "customer")
        assert row["agent_talk_s"] == pytest.approx(agent, abs=1e-3)
        assert row["customer_talk_s"] == pytest.approx(customer, abs=1e-3)
        assert row["talk_ratio"] == pytest.approx(agent / (agent + customer), abs=1e-4)
        words = sum(len(line["text"].split()) for line in ls if line["speaker"] == "customer")
        assert row["customer_wpm"] == pytest.approx(words / customer * 60, abs=0.05)


def test_every_demo_call_is_scored_as_its_script_implies(demo):
    out, _ = demo
    items = {(i["call_id"], i["criterion_id"]): i["result"] for i in out["scorecard_items"]}
    for card in out["scorecards"]:
        call_id = card["call_id"]
        expected = demo_truth.criteria(call_id)
        assert {c: items[(call_id, c)] for c in expected} == expected, call_id
        assert {k: card[k] for k in ("pct", "passed", "auto_failed")} == demo_truth.scorecard(call_id), call_id
        assert (card["rubric_id"], card["rubric_version"]) == ("standard", 1)
    assert len(out["scorecards"]) == len(demo_truth.call_ids())


def test_a_mono_call_is_scored_on_its_words_and_never_failed_on_who_said_them():
    """The demo calls recorded mono (every turn `unknown`): greetings, disclosures and closings are found in the
    words, interruptions cannot be measured (n.a.), and profanity nobody can attribute fails no "agent did not
    swear" criterion (n.a., its detail quoting it). They used to fail every agent criterion and be flagged high."""
    library = load_signals(ROOT / "signals")
    rules = load_qa(ROOT / "signals", library)
    calls, _, _, _ = load_transcripts(ROOT / "data/demo_transcripts", set())
    rows = [c.call for c in calls]
    mono = qa.add_sentiment([{**u, "speaker": "unknown"} for c in calls for u in c.utterances])
    hits, categories = tag_calls(Tagger(library), mono, {c["call_id"]: c["duration_s"] for c in rows})
    out = qa.assess(rules, library, rows, mono, hits, categories, "run-1")
    items = {(i["call_id"], i["criterion_id"]): i["result"] for i in out["scorecard_items"]}
    for call_id in demo_truth.call_ids():
        expected = demo_truth.criteria(call_id)
        for criterion in ("greeting", "agent_name", "recording_disclosure", "further_help", "empathy"):
            assert items[(call_id, criterion)] == expected[criterion], (call_id, criterion)
        assert items[(call_id, "no_interruptions")] == "na"
        said = {s for line in demo_truth.lines(call_id) for s in line["signals"]}
        swore = said & {"agent_profanity", "customer_profanity"}  # whoever did: on mono nobody can tell
        assert items[(call_id, "no_profanity")] == ("na" if swore else "pass"), call_id
        flagged = {f["flag_id"] for f in out["flags"] if f["call_id"] == call_id}
        assert "auto_fail" not in flagged  # no must-pass criterion fails on words nobody can attribute
        assert ("missing_disclosure" in flagged) == ("missing_disclosure" in demo_truth.flags(call_id)), call_id
    metrics = {m["call_id"]: m for m in out["call_metrics"]}
    assert all(m["agent_interruptions"] is None and m["talk_ratio"] is None for m in metrics.values())


def test_flags_are_what_the_scripts_imply(demo):
    """ended_negative included: the script's author marked the calls whose customer ends unhappy (customer_ends);
    scored with VADER's published lexicon, the escalated call (c-0006) ended at +0.45 and none was flagged."""
    out, utterances = demo
    for call_id in demo_truth.call_ids():
        got = {f["flag_id"] for f in out["flags"] if f["call_id"] == call_id}
        assert got == demo_truth.flags(call_id), call_id


def test_evidence_is_the_utterance_that_decided(demo):
    out, utterances = demo
    text = {(u["call_id"], u["utt_idx"]): u["text"] for u in utterances}
    items = {(i["call_id"], i["criterion_id"]): i for i in out["scorecard_items"]}
    profanity = items[("c-0009", "no_profanity")]
    line = next(i for i, line in enumerate(demo_truth.lines("c-0009")) if "agent_profanity" in line["signals"])
    assert profanity["result"] == "fail" and profanity["evidence"]["utt_idx"] == line
    assert profanity["evidence"]["text"] == text[("c-0009", line)]
    greeting = items[("c-0001", "greeting")]
    assert greeting["result"] == "pass" and greeting["evidence"]["utt_idx"] == 0
    assert greeting["evidence"]["start_s"] == demo_truth.lines("c-0001")[0]["start_s"]
    # a pass/fail with nothing said has no utterance to show, but says why
    assert items[("c-0004", "greeting")]["evidence"] is None
    assert "agent_greeting" in items[("c-0004", "greeting")]["detail"]
    # an n.a. decided nothing that an utterance shows: none of the demo's (hold_etiquette's n.a. rests on a
    # short silence, whose turn was shown as if it were about holding)
    assert [i for i in out["scorecard_items"] if i["result"] == "na" and i["evidence"]] == []
    assert any(i["result"] == "na" and i["criterion_id"] == "hold_etiquette" for i in out["scorecard_items"])
    # every non-n.a. signal criterion that passed points at a real utterance
    # (a long turn quoted around the words that decided, the rest cut off with "…")
    for item in out["scorecard_items"]:
        if item["evidence"]:
            said, quote = text[(item["call_id"], item["evidence"]["utt_idx"])], item["evidence"]["text"]
            assert quote == said if len(said) <= 160 else (quote.strip("…") in said and len(quote) < len(said))


def test_an_auto_fail_zeroes_the_call_and_is_flagged_with_its_evidence(demo):
    out, _ = demo
    card = next(c for c in out["scorecards"] if c["call_id"] == "c-0009")
    assert card["auto_failed"] and card["pct"] == 0 and card["points"] == 0 and not card["passed"]
    flag = next(f for f in out["flags"] if f["call_id"] == "c-0009" and f["flag_id"] == "auto_fail")
    assert flag["severity"] == "high" and "no_profanity" in flag["reason"] and "hell" in flag["reason"]


def test_a_metric_criterion_points_at_the_moment_behind_it(demo, tmp_path):
    """Interruptions and the longest silence have evidence too: the turn that cut in, the turn that ended the
    silence, as the scripts place them (their negative and longest gaps)."""
    import shutil

    shutil.copytree(ROOT / "signals", tmp_path / "signals")
    (tmp_path / "signals/rubric.yaml").write_text(
        "rubric:\n  id: timing\n  version: 1\n  criteria:\n"
        "    - {id: lets_agent_finish, points: 5, pass_if: {metric: customer_interruptions, lt: 1}}\n"
        "    - {id: no_interruptions, points: 5, pass_if: {metric: interruptions, lt: 1}}\n"
        "    - {id: no_dead_air, points: 5, pass_if: {metric: max_silence_s, lt: 5}}\n")
    (tmp_path / "signals/flags.yaml").write_text("flags: []\n")
    library = load_signals(tmp_path / "signals")
    out, utterances = demo
    calls, _, _, _ = load_transcripts(ROOT / "data/demo_transcripts", set())
    hits = []  # the criteria here test metrics only
    scored = qa.assess(load_qa(tmp_path / "signals", library), library, [c.call for c in calls], utterances,
                       hits, [], "run-1")
    items = {(i["call_id"], i["criterion_id"]): i for i in scored["scorecard_items"]}
    for call_id in demo_truth.call_ids():
        lines = demo_truth.lines(call_id)
        cut_in = next((i for i, line in enumerate(lines) if line["gap_s"] < 0), None)
        for criterion in ("lets_agent_finish", "no_interruptions"):
            item = items[(call_id, criterion)]
            assert item["result"] == ("pass" if cut_in is None else "fail"), (call_id, criterion)
            assert item["evidence"] == (None if cut_in is None else {
                "utt_idx": cut_in, "start_s": lines[cut_in]["start_s"], "text": lines[cut_in]["text"]})
        longest = max(line["gap_s"] for line in lines[1:])
        item, at = items[(call_id, "no_dead_air")], items[(call_id, "no_dead_air")]["evidence"]
        assert item["result"] == ("pass" if longest < 5 else "fail"), call_id
        # a line after a gap as long as the longest (most scripts' gaps are all 0.6 s, times rounded)
        assert lines[at["utt_idx"]]["gap_s"] == longest and at["start_s"] == lines[at["utt_idx"]]["start_s"]
    dead_air = items[("c-0007", "no_dead_air")]  # the one long silence of the scripts: 8 s, before its 9th line (utt_idx 8)
    assert dead_air["result"] == "fail" and dead_air["evidence"]["utt_idx"] == 8 == next(
        i for i, line in enumerate(demo_truth.lines("c-0007")) if line["gap_s"] == 8)


def metrics_of(turns: list[dict]) -> dict:
    """metrics_of() of turns numbered as a call's utterances are."""
    return metrics_of_rows([{**t, "utt_idx": i} for i, t in enumerate(turns)])


def turn(speaker, start, end, text="word " * 10, sentiment=None):
    return {"speaker": speaker, "start_s": start, "end_s": end, "text": text.strip(), "sentiment": sentiment}


def test_who_interrupted_whom():
    turns = [turn("customer", 0.0, 10.0), turn("agent", 4.0, 8.0),      # agent talks over the customer
             turn("customer", 11.0, 12.0), turn("agent", 11.9, 13.0),   # 0.1 s: an ordinary hand-over
             turn("agent", 14.0, 20.0), turn("customer", 15.0, 17.0)]   # customer cuts in
    m = metrics_of(turns)
    assert (m["agent_interruptions"], m["customer_interruptions"], m["interruptions"]) == (1, 1, 2)
    assert m["overlap_s"] == pytest.approx(4.0 + 0.1 + 2.0)
    assert m["turns"] == 5 and m["max_silence_s"] == pytest.approx(1.0)  # two agent turns in a row are one
    assert m["moments"] == [{"metric": "agent_interruptions", "utt_idx": 1, "start_s": 4.0},
                            {"metric": "customer_interruptions", "utt_idx": 5, "start_s": 15.0},
                            {"metric": "max_silence_s", "utt_idx": 2, "start_s": 11.0}]  # the first of two 1 s


def test_sentiment_start_end_and_change_are_the_customers():
    turns = [turn("customer", 0, 1, sentiment=-0.8), turn("agent", 1, 2, sentiment=0.9),
             turn("customer", 2, 3, sentiment=-0.4), turn("customer", 3, 4, sentiment=0.1),
             turn("customer", 4, 5, sentiment=0.5), turn("customer", 5, 6, sentiment=0.7),
             turn("customer", 6, 7, sentiment=0.9)]
    m = metrics_of(turns)  # 6 customer turns: the first 2 and the last 2
    assert m["sentiment_start"] == pytest.approx(-0.6) and m["sentiment_end"] == pytest.approx(0.8)
    assert m["sentiment_change"] == pytest.approx(1.4)


def test_mono_and_silent_calls_have_no_ratio_but_no_errors():
    mono = metrics_of([turn("unknown", 0, 5, sentiment=0.2), turn("unknown", 6, 8, sentiment=-0.2)])
    assert mono["talk_ratio"] is None and mono["silence_s"] == pytest.approx(1.0) and mono["sentiment_start"] == 0.2
    empty = metrics_of([])
    assert empty["turns"] == 0 and empty["silence_s"] == 0 and empty["sentiment_end"] is None


def test_a_call_where_one_side_never_speaks_has_a_talk_ratio_that_fails():
    """Only the customer spoke (an agent who never answered, or a dead agent channel): the agent's share is 0, so a
    balanced-talk criterion fails; it was null, so the criterion was n.a. and the call had no verdict."""
    customer_only = metrics_of([turn("customer", 0.5, 9.0), turn("customer", 10.0, 19.0)])
    assert (customer_only["agent_talk_s"], customer_only["customer_talk_s"], customer_only["talk_ratio"]) == (
        0.0, 17.5, 0.0)
    assert metrics_of([turn("agent", 0.0, 4.0)])["talk_ratio"] == 1.0


def test_vader_reads_spoken_turns():
    scored = qa.add_sentiment([{"text": "this is absolutely terrible, I'm furious"}, {"text": "thank you so much, great"},
                               {"text": "[CARD]"}])
    assert scored[0]["sentiment"] < -0.5 and scored[1]["sentiment"] > 0.5 and scored[2]["sentiment"] == 0


def test_a_stretched_last_word_is_not_an_interruption():
    """Whisper stretches a segment's last word to the segment end; the other side starting inside it is a
    normal hand-over. Talking over someone means they keep starting words (c-0008 and c-0004 from audio)."""
    def spoken(speaker, *words):
        return {"speaker": speaker, "start_s": words[0][0], "end_s": words[-1][1], "text": " ".join("w" * len(words)),
                "words": [{"word": "w", "start_s": a, "end_s": b, "probability": 0.9} for a, b in words]}

    handover = [spoken("customer", (45.6, 46.0), (46.8, 47.1), (47.1, 47.76)), spoken("agent", (47.27, 47.6), (47.6, 48.0))]
    assert metrics_of(handover)["agent_interruptions"] == 0
    cut_in = [spoken("agent", (30.2, 31.2), (31.2, 32.5), (32.5, 32.84)), spoken("customer", (32.83, 33.63), (33.63, 34.0)),
              spoken("agent", (32.84, 33.46), (33.8, 34.2), (34.24, 34.6))]
    assert (metrics_of(cut_in)["customer_interruptions"], metrics_of(cut_in)["agent_interruptions"]) == (1, 0)


def _spurts_by_definition(turns):
    """Every word of the speaker, in start order, joined while the pause before it is <= SPURT_GAP_S."""
    from pipeline.metrics import SPURT_GAP_S

    out = []
    for start, idx, end in sorted((w["start_s"], i, w["end_s"]) for i, u in enumerate(turns) for w in u["words"]):
        if out and start - out[-1][1] <= SPURT_GAP_S:
            out[-1] = (out[-1][0], max(out[-1][1], end), start, out[-1][3])
        else:
            out.append((start, end, start, idx))  # the turn of its first word: the earliest turn on a tie
    return out


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.lists(st.tuples(st.floats(0, 60), st.floats(0.01, 2)), min_size=1, max_size=6), max_size=6))
def test_spurts_joined_turn_by_turn_are_those_of_all_words(turn_words):
    from pipeline.metrics import _spurts

    turns = [{"utt_idx": i, "words": [{"start_s": a, "end_s": a + d} for a, d in words]}
             for i, words in enumerate(turn_words)]
    assert _spurts(turns) == _spurts_by_definition(turns)


def test_a_turn_without_word_times_is_one_spurt_of_evenly_spread_words():
    from pipeline.metrics import _spurts

    # 4 words over 2 s: the last starts at 1.5 s; 0.8 s later the next turn's words join the spurt
    turns = [turn("agent", 0.0, 2.0, "one two three four"), turn("agent", 2.8, 3.0, "five")]
    assert _spurts([{**t, "utt_idx": i} for i, t in enumerate(turns)]) == [(0.0, 3.0, 2.8, 0)]


def test_the_shipped_flags_raise_late_verification_and_spare_a_wrong_number():
    """Identity checked after the agent changed the account: the criterion fails and the compliance flag is raised
    (it only knew 'no check at all'). A 7 s wrong number that ends on a sour word is not 'still negative at the end
    of the call'; a 40 s call that does is."""
    library = load_signals(ROOT / "signals")
    rules = load_qa(ROOT / "signals", library)

    def call(call_id, turns):
        row = {"call_id": call_id, "call_date": "2026-11-20", "duration_s": turns[-1][2]}
        return row, [{"call_id": call_id, "utt_idx": i, "speaker": who, "start_s": start, "end_s": end, "text": text,
                      "words": [], "call_date": "2026-11-20"} for i, (who, start, end, text) in enumerate(turns)]

    calls = [call("late", [("agent", 0.5, 4.0, "thank you for calling Skyline Mobile my name is Sam"),
                           ("customer", 4.5, 8.0, "hi I moved house last month"),
                           ("agent", 8.5, 12.0, "I've updated the address on your account"),
                           ("agent", 12.5, 18.0, "can I take your date of birth to verify the account")]),
             call("wrong", [("customer", 0.5, 6.7, "oh sorry wrong number this is useless")]),
             call("sour", [("agent", 0.5, 4.0, "thank you for calling Skyline Mobile my name is Sam"),
                           ("customer", 4.5, 40.0, "this is useless and I am really angry about it")])]
    rows = [c for c, _ in calls]
    utterances = qa.add_sentiment([u for _, us in calls for u in us])
    hits, categories = tag_calls(Tagger(library), utterances, {c["call_id"]: c["duration_s"] for c in rows})
    out = qa.assess(rules, library, rows, utterances, hits, categories, "run-1")
    flags = {(f["call_id"], f["flag_id"]) for f in out["flags"]}
    verify = next(i for i in out["scorecard_items"] if (i["call_id"], i["criterion_id"]) == ("late", "verify_identity"))
    said_at = 12.5 + (18.0 - 12.5) * 4 / 11  # "date of birth": its turn's words spread evenly, 4 of 11 before it
    assert verify["result"] == "fail" and verify["detail"] == (
        f"identity_verification at 0:{int(said_at):02d}, after account_update at 0:08")
    assert ("late", "unverified_account_business") in flags
    assert ("wrong", "ended_negative") not in flags and ("sour", "ended_negative") in flags
