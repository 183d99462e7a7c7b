"""Rubric and flag grammar: the shipped rubric is a real QA form; every mistake is named by file and key."""
import json
import re
import shutil

import pytest
import yaml

from conftest import ROOT
from pipeline.config import ConfigError
from pipeline.rubric import load_qa
from pipeline.score import CallFacts, score_call
from pipeline.signals import load_signals

LIBRARY = load_signals(ROOT / "signals")


def test_the_default_rubric_is_a_contact_centre_qa_form():
    rules = load_qa(ROOT / "signals", LIBRARY)
    (rubric,) = rules.rubrics
    ids = {c.id for c in rubric.criteria}
    assert 8 <= len(ids) <= 12
    assert {"greeting", "agent_name", "verify_identity", "empathy", "hold_etiquette", "no_interruptions",
            "resolution_confirmed", "further_help", "closing", "no_profanity"} <= ids
    assert all(c.question.endswith("?") or "?" in c.question for c in rubric.criteria)
    assert [c.id for c in rubric.criteria if c.auto_fail] == ["no_profanity"]
    assert sum(c.points for c in rubric.criteria) == 100
    assert {"auto_fail", "low_qa_score", "escalation"} <= {f.id for f in rules.flags}


def folder_with(tmp_path, doc: dict, name="rubric.yaml"):
    signals = tmp_path / "signals"
    shutil.copytree(ROOT / "signals", signals)
    (signals / "rubric.yaml").unlink()
    (signals / "flags.yaml").unlink()
    (signals / name).write_text(yaml.safe_dump(doc))
    return signals


def rubric(*criteria, **extra):
    return {"rubric": {"id": "sales", "version": 1, "criteria": list(criteria), **extra}}


GOOD = {"id": "greet", "question": "Greeted?", "points": 10, "pass_if": {"signal": "agent_greeting"}}


@pytest.mark.parametrize("criterion, message", [
    ({**GOOD, "pass_if": {"signal": "agent_greting"}}, "rubric.criteria[0].pass_if.signal: unknown signal "
     "'agent_greting'; did you mean 'agent_greeting'?"),
    ({**GOOD, "pass_if": {"category": "nope"}}, "rubric.criteria[0].pass_if.category: unknown category 'nope'"),
    ({**GOOD, "pass_if": {"metric": "talk_speed", "lt": 3}}, "rubric.criteria[0].pass_if.metric: unknown metric 'talk_speed'"),
    ({**GOOD, "na_if": {"all": [{"no_signal": "x_y"}]}}, "rubric.criteria[0].na_if.all[0].no_signal: unknown signal 'x_y'"),
    ({**GOOD, "pass_if": {"metric": "talk_ratio"}}, "rubric.criteria.0.pass_if: a metric condition needs exactly one of lt, gt, between"),
    ({**GOOD, "pass_if": {"signal": "agent_greeting", "no_signal": "closing"}}, "needs exactly one of"),
    ({**GOOD, "pass_if": {"metric": "talk_ratio", "within": {"first_s": 5}, "lt": 1}}, "within only goes with signal"),
    ({**GOOD, "pass_if": {"score_pct_lt": 50}}, "rubric.criteria[0].pass_if.score_pct_lt: not allowed here"),
    ({**GOOD, "points": -5}, "rubric.criteria.0.points: must be >= 0"),
    ({**GOOD, "pass_if": {"signal": "agent_greeting", "within": {"first_s": 0}}}, "first_s: must be > 0"),
    # a bound on another scale than its metric's: percentages for a share, a 1-5 scale for VADER's -1..1
    ({**GOOD, "pass_if": {"metric": "talk_ratio", "between": [30, 70]}}, "rubric.criteria[0].pass_if: talk_ratio runs "
     "from 0 to 1 (the agent's share: 0.5 is half the talk), so 30 is outside it and the condition could never change"),
    ({**GOOD, "pass_if": {"metric": "sentiment_end", "gt": 5}}, "sentiment_end runs from -1 to 1 (VADER's compound "
     "score), so 5 is outside it"),
])
def test_a_mistake_names_the_file_and_key(tmp_path, criterion, message):
    folder = folder_with(tmp_path, rubric(criterion))
    with pytest.raises(ConfigError) as err:
        load_qa(folder, LIBRARY)
    text = str(err.value).replace("criteria.0", "criteria[0]")
    assert str(folder / "rubric.yaml") in text and message.replace("criteria.0", "criteria[0]") in text


def test_a_mistake_is_named_by_its_line_as_the_author_wrote_it(tmp_path):
    """Counted from 1, as an editor counts: the author need not count criteria from 0 to find criteria[2]."""
    folder = folder_with(tmp_path, {})
    (folder / "rubric.yaml").write_text(
        "# our sales form\n"
        "rubric:\n"
        "  id: sales\n"
        "  version: 1\n"
        "  criteria:\n"
        "    - {id: greet, points: 10, pass_if: {signal: agent_greeting}}\n"
        "    - id: close\n"
        "      points: 10\n"
        "      pass_if:\n"
        "        any:\n"
        "          - {signal: closing}\n"
        "          - {no_signal: cloisng}\n")
    with pytest.raises(ConfigError) as err:
        load_qa(folder, LIBRARY)
    assert str(err.value) == f"{folder / 'rubric.yaml'}:12: rubric.criteria[1].pass_if.any[1].no_signal: unknown signal 'cloisng'; did you mean 'closing'?"


def test_an_unknown_key_lists_the_keys_taken_there_and_a_misplaced_one_says_where_it_goes(tmp_path):
    """na_if written inside its pass_if: the keys listed are a rubric condition's (not a flag rule's scorecard
    tests, refused in a rubric), and the hint names the criterion it belongs to. A flag rule's condition lists
    its scorecard tests too."""
    conditions = "signal, no_signal, category, metric, lt, gt, between, within, before, all, any"
    inside = {**GOOD, "pass_if": {"all": [{"signal": "agent_greeting"}, {"na_if": {"no_signal": "complaint"}}]}}
    with pytest.raises(ConfigError) as err:
        load_qa(folder_with(tmp_path / "r", rubric(inside)), LIBRARY)
    assert str(err.value).split(": ", 1)[1] == (
        f"rubric.criteria[0].pass_if.all[1].na_if: unknown key (the keys here: {conditions}); na_if is a key of "
        'rubric.criteria[0]: move it out to sit beside pass_if; see README.md, "QA scorecards, flags and the '
        'coaching queue"')
    flag = {"flags": [{"id": "low", "severity": "high", "when": {"score_pct": 50}}]}
    with pytest.raises(ConfigError) as err:
        load_qa(folder_with(tmp_path / "f", {**rubric(GOOD), **flag}), LIBRARY)
    assert (f"flags[0].when.score_pct: unknown key (the keys here: {conditions}, score_pct_lt, auto_failed, "
            "criterion_failed); see") in str(err.value)


def test_a_rubric_worth_no_points_is_refused(tmp_path):
    """Its score (points earned / points possible) could never be given: every call would have no verdict.
    safe_dump sorts the keys: `criteria:` is the second line."""
    folder = folder_with(tmp_path, rubric({**GOOD, "points": 0}, {**GOOD, "id": "swear", "points": 0, "auto_fail": True}))
    with pytest.raises(ConfigError) as err:
        load_qa(folder, LIBRARY)
    assert str(err.value).startswith(f"{folder / 'rubric.yaml'}:2: rubric.criteria: worth 0 points in all")
    (folder / "rubric.yaml").write_text(yaml.safe_dump(rubric({**GOOD, "points": 5}, {**GOOD, "id": "swear", "points": 0,
                                                                                     "auto_fail": True})))
    assert [c.points for c in load_qa(folder, LIBRARY).rubrics[0].criteria] == [5, 0]


def test_duplicates_and_unknown_criteria_in_flags_are_refused(tmp_path):
    folder = folder_with(tmp_path, rubric(GOOD, GOOD))
    with pytest.raises(ConfigError, match="criterion id 'greet' is used twice"):
        load_qa(folder, LIBRARY)
    folder = folder_with(tmp_path / "b", {"flags": [{"id": "x", "severity": "high", "when": {"criterion_failed": "nope"}}]})
    with pytest.raises(ConfigError, match=r"flags\[0\]\.when: criterion_failed: unknown criterion 'nope'"):
        load_qa(folder, LIBRARY)
    folder = folder_with(tmp_path / "c", {"flags": [{"id": "x", "severity": "urgent", "when": {"auto_failed": True}}]})
    with pytest.raises(ConfigError, match=r"flags\.0\.severity|flags\[0\]\.severity"):
        load_qa(folder, LIBRARY)
    folder = folder_with(tmp_path / "d", {"flags": [{"id": "x", "severity": "High", "when": {"auto_failed": True}}]})
    assert [f.severity for f in load_qa(folder, LIBRARY).flags] == ["high"]  # as a QA manager writes it


@pytest.mark.parametrize("doc, message", [
    (rubric(GOOD, pass_pct=0.8), "rubric.pass_pct: is a percentage (0.8 passes a call scoring 0.8%); write 80 for 80%"),
    ({"flags": [{"id": "x", "severity": "high", "when": {"score_pct_lt": 0.6}}]},
     "flags[0].when: score_pct_lt is a percentage (0.6 flags only calls scoring under 0.6%); write 60 for 60%"),
    ({"flags": [{"id": "x", "severity": "high", "when": {"auto_failed": False}}]},  # it flagged unscored calls too
     "flags[0].when: auto_failed: true is its one form"),
])
def test_a_share_where_a_percentage_goes_and_a_false_auto_failed_are_refused(tmp_path, doc, message):
    folder = folder_with(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        load_qa(folder, LIBRARY)
    assert message in str(err.value).replace("flags.0", "flags[0]")


def test_a_repeated_criterion_an_empty_rubric_and_flags_without_one_say_where_and_why(tmp_path):
    """The repeated id is named by its own line (it was `rubric:`'s); `rubric:` with nothing under it is refused (it
    only warned that no call would be scored); flags naming a criterion when no rubric is left say that is why."""
    signals = tmp_path / "signals"
    shutil.copytree(ROOT / "signals", signals)
    ids = [c["id"] for c in yaml.safe_load((signals / "rubric.yaml").read_text())["rubric"]["criteria"]]
    lines = (signals / "rubric.yaml").read_text().splitlines()
    second = next(k for k, line in enumerate(lines) if line.strip() == "- id: empathy")
    lines[second] = lines[second].replace("empathy", "greeting")
    (signals / "rubric.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as err:
        load_qa(signals, LIBRARY)
    assert str(err.value) == (f"{signals / 'rubric.yaml'}:{second + 1}: rubric.criteria[{ids.index('empathy')}].id: "
                              f"criterion id 'greeting' is used twice (first as criteria[{ids.index('greeting')}])")

    (signals / "rubric.yaml").write_text("# our form\nrubric:\n")
    with pytest.raises(ConfigError, match=r"rubric\.yaml:2: rubric: is empty; give its id, version and criteria"):
        load_qa(signals, LIBRARY)
    (signals / "rubric.yaml").write_text("")
    with pytest.raises(ConfigError, match=r"flags\.yaml:\d+: flags\[\d\]\.when: criterion_failed: unknown criterion "
                       r"'\w+' \(no rubric is configured"):
        load_qa(signals, LIBRARY)


def test_rubrics_are_chosen_per_queue_with_a_default(tmp_path):
    folder = folder_with(tmp_path, rubric(GOOD, applies_to={"queue": ["sales"]}), name="sales.yaml")
    (folder / "rubric.yaml").write_text((ROOT / "signals/rubric.yaml").read_text())
    rules = load_qa(folder, LIBRARY)
    assert [r.id for r in rules.rubrics_for({"queue": "sales"})] == ["sales"]
    assert [r.id for r in rules.rubrics_for({"queue": "billing"})] == ["standard"]
    assert [r.id for r in rules.rubrics_for({"queue": None})] == ["standard"]


def facts(hits, metrics=None, duration=120.0):
    call = {"call_id": "c", "call_date": None, "duration_s": duration}
    texts = {h["utt_idx"]: f"utterance {h['utt_idx']}" for h in hits}
    return CallFacts(call, hits, set(), metrics or {}, texts, LIBRARY)


def hit(signal, utt_idx, start_s):
    return {"signal_id": signal, "utt_idx": utt_idx, "start_s": start_s, "speaker": "agent", "matched_text": signal}


def test_windows_na_and_unmeasurable_metrics(tmp_path):
    folder = folder_with(tmp_path, rubric(
        {**GOOD, "pass_if": {"signal": "agent_greeting", "within": {"first_s": 15}}},
        {"id": "close", "points": 10, "pass_if": {"signal": "closing", "within": {"last_s": 30}}},
        {"id": "ratio", "points": 5, "pass_if": {"metric": "talk_ratio", "between": [0.3, 0.7]}},
        {"id": "verify", "points": 20, "pass_if": {"signal": "identity_verification"},
         "na_if": {"metric": "duration_s", "lt": 45}}))
    (r,) = load_qa(folder, LIBRARY).rubrics
    card, items = score_call(r, facts([hit("agent_greeting", 3, 20.0), hit("closing", 9, 100.0)],
                                      {"talk_ratio": None, "duration_s": 120.0}))
    got = {i["criterion_id"]: (i["result"], i["points"], i["max_points"]) for i in items}
    assert got == {"greet": ("fail", 0, 10), "close": ("pass", 10, 10), "ratio": ("na", 0, 0), "verify": ("fail", 0, 20)}
    greet = next(i for i in items if i["criterion_id"] == "greet")
    assert greet["evidence"]["utt_idx"] == 3 and "outside the first 15 s" in greet["detail"]
    assert (card["points"], card["max_points"], card["pct"], card["passed"]) == (10, 40, 25.0, False)
    _, items = score_call(r, facts([], {"talk_ratio": 0.5, "duration_s": 30.0}, duration=30.0))
    assert {i["criterion_id"]: i["result"] for i in items}["verify"] == "na"


def test_a_signal_that_must_come_before_others(tmp_path):
    """Identity verified before account business: a check after the payment fails, pointing at the payment; one
    before it, or on a call with no such business, passes; none at all fails as before."""
    folder = folder_with(tmp_path, rubric(
        {"id": "verify", "points": 20, "pass_if": {"signal": "identity_verification",
                                                   "before": ["payment_taken", "account_update"]}},
        {**GOOD, "pass_if": {"signal": "agent_greeting", "before": "payment_taken"}}))
    (r,) = load_qa(folder, LIBRARY).rubrics

    def results(*hits):
        return {i["criterion_id"]: (i["result"], i["detail"], (i["evidence"] or {}).get("utt_idx"))
                for i in score_call(r, facts(list(hits)))[1]}

    late = results(hit("agent_greeting", 0, 1.0), hit("account_update", 4, 12.0), hit("payment_taken", 6, 30.0),
                   hit("identity_verification", 5, 19.0))
    assert late["verify"] == ("fail", "identity_verification at 0:19, after account_update at 0:12", 4)
    assert late["greet"] == ("pass", "agent_greeting at 0:01", 0)
    first = results(hit("identity_verification", 2, 8.0), hit("payment_taken", 6, 30.0))
    assert first["verify"] == ("pass", "identity_verification at 0:08", 2)
    assert results(hit("identity_verification", 2, 8.0))["verify"][0] == "pass"  # no business: nothing to precede
    assert results(hit("payment_taken", 6, 30.0))["verify"][:2] == ("fail", "no identity_verification")
    for wrong, message in [({"no_signal": "agent_profanity", "before": ["payment_taken"]}, "before only goes with "
                            "signal"), ({"signal": "identity_verification", "before": ["paymnet_taken"]},
                                        "pass_if.before[0]: unknown signal 'paymnet_taken'")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_qa(folder_with(tmp_path / wrong.get("signal", "x"), rubric({**GOOD, "pass_if": wrong})), LIBRARY)


def test_a_long_turn_is_quoted_around_the_words_that_decided():
    """A disclosure at the end of a long opening turn: the evidence quotes the words said with some context, not
    the turn's start (a page shows a quote's first lines, and the disclosure was cut off)."""
    opening = ("Good morning and welcome to Skyline Bank, before we start I would like to tell you about our new "
               "rewards programme which gives you points on every purchase, and please note this call is recorded "
               "for training and quality purposes, how can I help?")
    said = "this call is recorded"
    hit = {"signal_id": "recording_disclosure", "utt_idx": 0, "start_s": 40.0, "speaker": "agent",
           "matched_text": said}
    call = {"call_id": "c", "call_date": None, "duration_s": 120.0}
    facts = CallFacts(call, [hit], set(), {}, {0: opening}, LIBRARY)
    quote = facts.evidence(hit)["text"]
    assert said in quote and len(quote) < len(opening) and quote.startswith("…") and quote.endswith("help?")
    assert opening.endswith(quote[1:]) and " " + quote[1:].split()[0] + " " in opening  # cut at a word
    short = CallFacts(call, [hit], set(), {}, {0: "Hi, this call is recorded."}, LIBRARY)
    assert short.evidence(hit)["text"] == "Hi, this call is recorded."


def test_a_rubric_stored_by_a_release_with_fewer_keys_is_not_called_edited():
    """An older release wrote the definition without keys added since (with defaults): the rubric is the same,
    so no "changed without a new version" note, and its first run stays. A real edit is still told."""
    from pipeline import qa

    rules = load_qa(ROOT / "signals", LIBRARY)
    (rubric,) = rules.rubrics
    older = rubric.model_dump(mode="json", exclude={"applies_to"})  # as if these keys came later, with defaults
    for criterion in older["criteria"]:
        if criterion["na_if"] is None:
            del criterion["na_if"]
    stored = [{"rubric_id": rubric.id, "rubric_version": rubric.version, "rubric_hash": "0123456789abcdef",
               "definition": json.dumps(older), "first_run": "first-night", "current": True}]
    rows, notes = qa.rubric_rows(rules, stored, "upgrade-night")
    assert notes == [] and [r["first_run"] for r in rows] == ["first-night"]
    older["criteria"][0]["points"] += 5
    rows, notes = qa.rubric_rows(rules, [{**stored[0], "definition": json.dumps(older)}], "upgrade-night")
    assert [r["first_run"] for r in rows] == ["upgrade-night"] and len(notes) == 1
    assert notes[0].startswith(f"rubric {rubric.id} v{rubric.version} was changed without a new version")
