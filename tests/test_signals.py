"""Signal grammar, lemma/ASR-robust matching, speaker scope, windows, negation, categories."""
import json

import pytest

from pipeline.config import ConfigError
from pipeline.rubric import load_qa
from pipeline.signals import load_signals
from pipeline.tag import Tagger, normalise, tag_calls

LIBRARY = """
signals:
  - id: cancel_intent
    category: churn_risk
    speaker: customer
    phrases: [cancel my subscription, close my account, want to cancel, cancel]
    patterns:
      - [{LEMMA: end}, {OP: "?"}, {LEMMA: {IN: [contract, plan]}}]
  - id: repeat_caller
    speaker: customer
    phrases: [third time I have called, call three times]
  - id: disclosure
    speaker: agent
    phrases: [this call may be recorded]
    window: {first_s: 30}
    negation: ignore
  - id: goodbye
    phrases: [goodbye]
    window: {last_s: 20}
  - id: order_number
    regex: ['\\border (?:number )?\\d{6}\\b']
    negation: ignore
  - id: retention_offer
    speaker: agent
    phrases: [offer you a discount]
  - id: manager_ask
    speaker: customer
    phrases: [speak to a manager, get me a manager]
categories:
  - id: unsaved_churn
    all: [cancel_intent]
    none: [retention_offer]
  - id: saved_churn
    all: [cancel_intent, retention_offer]
"""


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals")
    (folder / "lib.yaml").write_text(LIBRARY)
    return Tagger(load_signals(folder))


def fired(tagger, text, speaker="customer"):
    return {h.signal_id: h.matched_text for h in tagger.match(text, speaker)[0]}


@pytest.mark.parametrize("text, matched", [
    ("I'm cancelling my subscriptions", "cancelling my subscriptions"),
    ("Cancelled my subscription!", "Cancelled my subscription"),
    ("i wanna cancel", "wanna cancel"),
    ("CLOSE MY ACCOUNT please", "CLOSE MY ACCOUNT"),
    ("I'd like to end the contract", "end the contract"),
    ("I'm ending my plan", "ending my plan"),
])
def test_phrases_and_patterns_match_on_lemmas_case_and_punctuation_free(tagger, text, matched):
    assert fired(tagger, text)["cancel_intent"] == matched


def test_asr_forms_digits_and_contractions(tagger):
    assert fired(tagger, "this is the 3rd time ive called")["repeat_caller"] == "3rd time ive called"
    assert fired(tagger, "I've called 3 times")["repeat_caller"] == "called 3 times"
    assert "order_number" in fired(tagger, "my order number 123456 hasn't come")
    assert "order_number" not in fired(tagger, "my order number 12345 hasn't come")


@pytest.mark.parametrize("text, matched", [
    ("my bill's wrong", "bill's wrong"),
    ("It's wrong again!", "It's wrong"),
    ("the meter’s broken", "meter’s broken"),
    ("the meter was broken", "meter was broken"),
])
def test_a_phrase_with_is_matches_its_contraction(tmp_path, text, matched):
    """ASR writes "the bill's wrong" far more often than "the bill is wrong"; "'re" and "'m" already matched."""
    (tmp_path / "lib.yaml").write_text("signals:\n  - id: dispute\n    phrases: [bill is wrong, it is wrong]\n"
                                       "  - id: fault\n    phrases: [meter is broken]\n")
    hits = Tagger(load_signals(tmp_path)).match(text, "customer")[0]
    assert [h.matched_text for h in hits] == [matched]


@pytest.mark.parametrize("text", [
    "I don't want to cancel",
    "I'm not going to cancel",
    "no need to cancel",
    "i dont want to cancel my subscription",
    "I never said I wanted to cancel",
    "I do not want to close my account",
])
def test_negated_mentions_do_not_fire(tagger, text):
    hits, negated = tagger.match(text, "customer")
    assert "cancel_intent" not in {h.signal_id for h in hits}
    assert [n.signal_id for n in negated] == ["cancel_intent"]


@pytest.mark.parametrize("text", [
    "I want to cancel, I don't want this anymore",
    "No, I want to cancel",
    "I'm not happy. I want to cancel",
    "im not happy i want to cancel",
    "I don't know why but I want to cancel",
    "why can't I cancel my subscription",
    "I don't care about the fee, just cancel",
    "a plan that doesn't work this is why I want to cancel",
    "don't worry cancel my subscription",
])
def test_negation_stays_in_its_clause(tagger, text):
    assert "cancel_intent" in fired(tagger, text)


@pytest.mark.parametrize("text, fires", [
    # unpunctuated, as many transcripts come: a request to be handed on opens a clause of its own
    ("nothing works let me speak to a manager", True),
    ("not happy at all get me a manager", True),
    ("you won't let me speak to a manager", True),
    ("I don't need to speak to a manager", False),
    ("no need to get me a manager", False),
])
def test_a_request_to_be_handed_on_opens_a_clause(tagger, text, fires):
    assert ("manager_ask" in fired(tagger, text)) is fires


def test_negation_ignore_counts_negated_mentions(tagger):
    assert "disclosure" in fired(tagger, "this call may be recorded, don't worry", "agent")
    assert "disclosure" in fired(tagger, "not that this call may be recorded", "agent")


def test_speaker_scope(tagger):
    assert "cancel_intent" not in fired(tagger, "do you want to cancel", "agent")
    assert "disclosure" not in fired(tagger, "this call may be recorded", "customer")
    assert "goodbye" in fired(tagger, "goodbye", "agent") and "goodbye" in fired(tagger, "goodbye", "customer")


def utt(call, idx, speaker, start, text):
    return {"call_id": call, "utt_idx": idx, "speaker": speaker, "start_s": start, "text": text,
            "call_date": "2026-11-09"}


def test_windows_and_categories_per_call(tagger):
    utterances = [
        utt("a", 0, "agent", 2.0, "Hello, this call may be recorded"),
        utt("a", 1, "customer", 10.0, "I want to cancel my subscription"),
        utt("a", 2, "agent", 20.0, "I can offer you a discount"),
        utt("a", 3, "agent", 50.0, "Goodbye"),
        utt("b", 0, "agent", 31.0, "this call may be recorded"),  # after the first 30 s
        utt("b", 1, "customer", 40.0, "cancel it all"),
        utt("b", 2, "customer", 41.0, "goodbye"),                 # 59 s before the end of a 100 s call
    ]
    hits, categories = tag_calls(tagger, utterances, {"a": 60.0, "b": 100.0})
    assert sorted((h["call_id"], h["signal_id"], h["utt_idx"]) for h in hits) == [
        ("a", "cancel_intent", 1), ("a", "disclosure", 0), ("a", "goodbye", 3), ("a", "retention_offer", 2),
        ("b", "cancel_intent", 1)]
    assert {h["category"] for h in hits if h["signal_id"] == "cancel_intent"} == {"churn_risk"}
    assert sorted((c["call_id"], c["category_id"]) for c in categories) == [("a", "saved_churn"), ("b", "unsaved_churn")]


def test_a_window_tests_when_the_phrase_was_said_not_when_its_turn_began(tagger):
    """A 45 s turn that ends with the disclosure said it ~40 s in: outside the first 30 s (it passed, from the turn's
    start). A goodbye ending a turn that began 46 s before a 56 s call's end was said in its last 20 s (it failed).
    Without word times, a turn's words are spread evenly over it; with them (ASR), the word's own time is used."""
    filler = "let me go over your account and the changes we made to it today " * 2  # 28 words
    long_disclosure = {**utt("a", 0, "agent", 0.5, filler + "this call may be recorded"), "end_s": 45.0}
    long_goodbye = {**utt("a", 1, "agent", 10.0, filler + "okay goodbye"), "end_s": 55.0}
    hits, _ = tag_calls(tagger, [long_disclosure, long_goodbye], {"a": 56.0})
    assert [(h["signal_id"], h["start_s"]) for h in hits] == [("goodbye", round(10.0 + 29 * 45.0 / 30, 3))]

    said = [{"word": w, "start_s": 0.5 + k * 0.25, "end_s": 0.7 + k * 0.25}  # said quickly: the phrase at 7.5 s
            for k, w in enumerate(long_disclosure["text"].split())]
    hits, _ = tag_calls(tagger, [{**long_disclosure, "words": said}], {"a": 56.0})
    assert [(h["signal_id"], h["start_s"]) for h in hits] == [("disclosure", 0.5 + 28 * 0.25)]


def test_stored_turns_tagged_again_keep_their_words_times(tagger):
    """Re-tagging the archive (signals changed) reads the words' times from Parquet's columns, not a dict a word:
    each hit at the time it had when the call was first tagged."""
    import pyarrow as pa

    from pipeline.archive import tag_rows
    from pipeline.schemas import conform

    turns = [{**utt("a", k, "agent", 1.0 + 10 * k, text), "end_s": 9.0 + 10 * k, "call_date": None,
              "words": [{"word": w, "start_s": 1.0 + 10 * k + j, "end_s": 1.5 + 10 * k + j, "probability": 0.9}
                        for j, w in enumerate(text.split())]}
             for k, text in enumerate(["hi there, this call may be recorded", "no words here", "okay then goodbye"])]
    turns[1]["words"] = []  # an imported transcript's turn: no word times
    first, _ = tag_calls(tagger, turns, {"a": 30.0})
    stored = conform("utterances", turns).select(list(turns[0]))  # as Parquet gives them back
    again, _ = tag_rows(tagger, {"utterances": stored, "calls": pa.table({"call_id": ["a"], "duration_s": [30.0]})},
                        tag_calls)
    # each its turn's third word
    assert [(h["signal_id"], h["start_s"]) for h in first] == [("disclosure", 3.0), ("goodbye", 23.0)]
    assert again == first


def test_one_hit_per_signal_per_utterance(tagger):
    hits, _ = tagger.match("cancel, cancel, I want to cancel my subscription", "customer")
    assert [h.signal_id for h in hits] == ["cancel_intent"]


EDGE_LIBRARY = """
signals:
  - id: refund_any
    patterns:
      - [{LEMMA: refund}, {LOWER: {NOT_IN: [policy]}}]
  - id: very_annoyed
    patterns:
      - [{LOWER: very, OP: "+"}, {LEMMA: annoy}]
  - id: not_working
    phrases: [do not work, can not connect, i am leaving]
  - id: spoken
    speaker: customer
    phrases: [want to leave, third time, give me a call]
"""


@pytest.fixture(scope="module")
def edge_tagger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edge")
    (folder / "lib.yaml").write_text(EDGE_LIBRARY)
    return Tagger(load_signals(folder))


def variants(text):
    """The same words the ways ASR and people write them: case, punctuation, curly apostrophes."""
    words = text.split()
    return {text, text.upper(), text.capitalize(), ", ".join(words), "".join(words), text.replace("'", "\u2019"),
            f"um, {text}!", f"{text} and then no, I {text}", text.replace(" ", "  ")}


def test_a_negated_value_is_never_an_anchor(edge_tagger):
    assert "refund_any" in fired(edge_tagger, "can you refund please")
    assert "refund_any" not in fired(edge_tagger, "the refund policy")


@pytest.mark.parametrize("text", [
    "it doesn't work", "it don't work", "it dont work", "I can't connect", "i cannot connect", "I'm leaving",
    "im leaving", "I wanna leave", "I want to leave", "3rd time", "the 3rd time", "third time", "gimme a call",
    "very very annoyed", "VERY ANNOYING", "refund it", "refunded twice", "café refund", "İ want to leave",
    "naïve refund", "ßtraße very annoyed", "", "   ", "!!!",
])
def test_prefilter_never_changes_an_answer(tagger, edge_tagger, text):
    """Only turns that cannot match are skipped: the answers are those of matching every turn in full."""
    for t in (tagger, edge_tagger):
        for variant in variants(text):
            for speaker in ("agent", "customer", "unknown", None):
                assert t.match(variant, speaker) == t.match(variant, speaker, prefilter=False), (variant, speaker)


def test_prefilter_agrees_on_the_test_library_sentences(tagger):
    sentences = [
        "I'm cancelling my subscriptions", "i wanna cancel", "I'd like to end the contract", "I'm ending my plan",
        "this is the 3rd time ive called", "I've called 3 times", "my order number 123456 hasn't come",
        "I don't want to cancel", "I never said I wanted to cancel", "why can't I cancel my subscription",
        "this call may be recorded, don't worry", "I can offer you a discount", "Goodbye",
    ]
    for text in sentences:
        for variant in variants(text):
            for speaker in ("agent", "customer", None):
                assert tagger.match(variant, speaker) == tagger.match(variant, speaker, prefilter=False)


def test_a_repeated_turn_gets_the_answer_of_its_own_speaker_and_words(tagger):
    """match_many remembers turns: the same words said by another side, or written otherwise, are their own."""
    texts = ["I want to cancel", "I want to cancel", "I want to cancel", "I WANT to cancel!", "I want to cancel"]
    speakers = ["customer", "agent", "unknown", "customer", None]
    for _ in range(2):
        found = {i: [(h.signal_id, h.matched_text) for h in hits] for i, hits in tagger.match_many(texts, speakers)}
        assert found == {0: [("cancel_intent", "want to cancel")], 2: [("cancel_intent", "want to cancel")],
                         3: [("cancel_intent", "WANT to cancel")], 4: [("cancel_intent", "want to cancel")]}


def test_normalise_keeps_apostrophes_and_drops_punctuation():
    assert normalise("Hi!  It’s £25.50, OK?") == "hi it's 25 50 ok"
    assert normalise("Thank you for calling") == "thank you for calling"
    assert normalise(" café,AU lait ") == "café au lait"


@pytest.mark.parametrize("yaml_text, line, message", [
    ("signals:\n  - id: a\n    phrases: [x]\n    window: {first_s: 0}\n", 4, "signals[0].window.first_s: must be > 0"),
    ("signals:\n  - id: a\n    phrases: [x]\n  - id: b\n    phrases: [y]\n    window: {first_s: -3}\n",
     6, "signals[1].window.first_s: must be > 0"),
    ("signals:\n  - id: a\n    phrases: [x]\n    window: {first_s: 5, last_s: 5}\n",
     4, "signals[0].window: give exactly one of first_s or last_s"),
    ("signals:\n  - id: Bad-Id\n    phrases: [x]\n", 2, "signals[0].id: an id is lower-case letters, digits and _, starting with a letter, like "
     "cancel_intent (it is 'Bad-Id')"),
    ("signals:\n  - id: a\n    speaker: robot\n    phrases: [x]\n", 3, "signals[0].speaker: must be one of"),
    ("signals:\n  - id: a\n", 2, "signals[0]: needs at least one of phrases, patterns or regex"),
    ("signals:\n  - id: a\n    regex: ['(unclosed']\n", 3, "signals[0].regex: regex 0 does not compile"),
    ("signals:\n  - id: a\n    phrases: [x]\n    negation: maybe\n", 4, "signals[0].negation: must be one of"),
    ("signals:\n  - id: a\n    phrases: [x]\n    patterns: [[{LEMMA: {NOPE: [a]}}]]\n",
     4, "signals[0].patterns[0]: not a valid spaCy token pattern"),
    # in the author's words: LEMMA, not the NORM callintel matches it on
    ("signals:\n  - id: a\n    phrases: [x]\n    patterns: [[{LEMMA: {IN: cancel}}]]\n",
     4, "signals[0].patterns[0]: not a valid spaCy token pattern (Invalid token patterns for matcher rule 'a.0' "
     "Pattern 0: - [pattern -> 0 -> LEMMA -> TokenPatternString -> IN] Input should be a valid list"),
    ("signals:\n  - id: a\n    phrases: [x]\ncategories:\n  - id: c\n    all: [a, b]\n",
     6, "categories[0].all[1]: unknown signal 'b'"),
    ("signals:\n  - id: a\n    phrases: [x]\n  - id: a\n    phrases: [y]\n", 4, "signals[1].id: 'a' is already defined"),
    ("signal:\n  - id: a\n", 1, "signal: unknown key"),
    # PyYAML keeps the last of a key given twice: the first block's signals were dropped without a word
    ("signals:\n  - id: a\n    phrases: [x]\n\nsignals:\n  - id: b\n    phrases: [y]\n", 5,
     "not valid YAML: the key 'signals' is given twice (first on line 1)"),
    ("signals:\n  - id: a\n    phrases: [x]\n    speaker: agent\n    phrases: [y]\n", 5,
     "the key 'phrases' is given twice (first on line 3)"),
    # a misspelt key is the news, not what its absence breaks (here a string-less counter-example before)
    ("signals:\n  - id: a\n    phrases: [x]\n    counter_example: [y]\n    speaker: robot\n",
     4, "signals[0].counter_example: unknown key"),
    ("signals:\n  - id: a\n    phrases: [true, x]\n", 3, "signals[0].phrases[0]: YAML read true as a boolean, not text: "
     "put it in quotes"),
])
def test_config_errors_name_file_line_and_key(tmp_path, yaml_text, line, message):
    """The line is the one an editor shows for the key (or list item) at fault, counted in the YAML above."""
    (tmp_path / "lib.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_signals(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'lib.yaml'}:{line}: ") and message in str(err.value)


@pytest.mark.parametrize("expr, message", [
    # each of these can never match: matching sees "ofgem", "50", "it's" and "e mail"
    ("Ofgem|energy ombudsman", "regex 0 has 'O', but the text it runs on is lower case: write 'ofgem|energy ombudsman'"),
    ("\u00a3\\d+", "regex 0 has '\u00a3', but the text it runs on has no punctuation"),
    ("it\u2019s wrong", "regex 0 has a curly quote '\u2019'; the text it runs on has straight ones: write \"it's wrong\""),
    ("\\be-mail\\b", "regex 0 has '-', but the text it runs on has no punctuation"),
])
def test_a_regex_spelling_what_normalised_text_never_holds_is_an_error(tmp_path, expr, message):
    (tmp_path / "lib.yaml").write_text(f"signals:\n  - id: a\n    regex: [{json.dumps(expr)}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_signals(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'lib.yaml'}:3: signals[0].regex: {message}")


@pytest.mark.parametrize("expr", ["(?i)Ofgem", "(?i:Ofgem) rules", "[A-Z]{2}\\d", "\\d+(?!\\.)", "\\Bfoo\\S",
                                  "it's wrong"])
def test_a_regex_whose_capitals_or_punctuation_cannot_stop_a_match_is_kept(tmp_path, expr):
    (tmp_path / "lib.yaml").write_text(f"signals:\n  - id: a\n    regex: [{json.dumps(expr)}]\n", encoding="utf-8")
    assert load_signals(tmp_path).signals[0].regex == [expr]


def test_yes_no_on_off_are_words_not_booleans(tmp_path):
    """YAML 1.1 reads unquoted no/yes/on/off as booleans: a phrase list [no, nope] held False. Read as YAML 1.2
    (true/false only), they are the words written; a rubric's `auto_fail: yes` is still true."""
    (tmp_path / "lib.yaml").write_text(
        "signals:\n  - id: decline\n    speaker: customer\n    phrases: [no, nope, No thanks]\n"
        "    examples: [no, nope]\n    counter_examples: [yes, on, Off]\n")
    (tmp_path / "rubric.yaml").write_text(
        "rubric:\n  id: r\n  version: 1\n  criteria:\n"
        "    - {id: c, points: 1, auto_fail: yes, pass_if: {no_signal: decline}}\n")
    library = load_signals(tmp_path)
    assert library.signals[0].phrases == ["no", "nope", "No thanks"]
    assert library.signals[0].counter_examples == ["yes", "on", "Off"]
    assert Tagger(library).check_examples() == []
    assert load_qa(tmp_path, library).rubrics[0].criteria[0].auto_fail is True


def test_hidden_files_in_the_signals_folder_are_not_read(tmp_path):
    """A folder copied from a Mac to a share holds a binary `._<name>` beside each file; an editor leaves locks."""
    (tmp_path / "lib.yaml").write_text("signals:\n  - id: a\n    phrases: [x]\n"
                                       "rubric:\n  id: r\n  version: 1\n  criteria:\n"
                                       "    - {id: c, points: 1, pass_if: {signal: a}}\n")
    (tmp_path / "._lib.yaml").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \xff\xfe")
    (tmp_path / ".#lib.yaml").write_text("signals: [")
    library = load_signals(tmp_path)
    assert [s.id for s in library.signals] == ["a"]
    assert [r.id for r in load_qa(tmp_path, library).rubrics] == ["r"]


def test_a_file_notepad_saved_as_unicode_is_read(tmp_path):
    """Windows Notepad's "Unicode" is UTF-16 with a byte-order mark."""
    (tmp_path / "lib.yaml").write_text("signals:\n  - id: a\n    phrases: [it\u2019s wrong]\n", encoding="utf-16")
    assert load_signals(tmp_path).signals[0].phrases == ["it\u2019s wrong"]


def test_a_file_not_in_utf8_names_its_line_and_what_to_do(tmp_path):
    (tmp_path / "lib.yaml").write_bytes("signals:\n  - id: a\n    phrases: [\u00a350 charge]\n".encode("cp1252"))
    with pytest.raises(ConfigError) as err:
        load_signals(tmp_path)
    assert str(err.value) == (f"{tmp_path / 'lib.yaml'}: line 3 is not UTF-8 text (byte 0xa3): "
                              "save the file with the encoding UTF-8")


def test_an_empty_folder_is_a_valid_library(tmp_path):
    lib = load_signals(tmp_path)
    assert lib.signals == () and Tagger(lib).match("I want to cancel") == ([], [])


def test_hash_follows_content(tmp_path):
    (tmp_path / "lib.yaml").write_text("signals:\n  - id: a\n    phrases: [x]\n")
    first = load_signals(tmp_path).hash
    (tmp_path / "lib.yaml").write_text("signals:\n  - id: a\n    phrases: [x, y]\n")
    assert load_signals(tmp_path).hash != first


def test_check_examples_lists_every_broken_example(tmp_path):
    (tmp_path / "lib.yaml").write_text(
        "signals:\n  - id: cancel\n    speaker: customer\n    phrases: [cancel]\n"
        "    examples: [I want to cancel, I don't want to cancel]\n"
        "    counter_examples: [no cancellations here, please cancel it]\n")
    problems = Tagger(load_signals(tmp_path)).check_examples()
    path = tmp_path / "lib.yaml"  # each named by its line: the examples' and the counter-examples'
    assert problems == [
        f"{path}:5: signals[0].examples[1]: cancel does not match (negated by \"n't\"): \"I don't want to cancel\"",
        f"{path}:6: signals[0].counter_examples[1]: cancel matches on 'cancel': 'please cancel it'"]


def test_a_category_may_test_call_metrics_beside_signals(tmp_path):
    """DESIGN.md: categories are call-level rules over signals and metrics. A cancellation on a call over five
    minutes is `long_churn`; a call with a silence of over 20 s is `dead_air`; a metric a call cannot be measured
    on is not there; an unknown metric is refused where it is written."""
    (tmp_path / "lib.yaml").write_text(LIBRARY.split("categories:")[0] + """categories:
  - id: long_churn
    all: [cancel_intent, {metric: duration_s, gt: 300}]
  - id: dead_air
    any: [{metric: max_silence_s, gt: 20}]
  - id: one_sided
    all: [{metric: talk_ratio, between: [0.9, 1.0]}]
""")
    tagger = Tagger(load_signals(tmp_path))

    def turn(call, idx, speaker, start, end, text):
        return {"call_id": call, "utt_idx": idx, "speaker": speaker, "start_s": start, "end_s": end, "text": text,
                "call_date": "2026-11-20"}

    utterances = [turn("long", 0, "agent", 0.0, 5.0, "how can I help"),
                  turn("long", 1, "customer", 5.5, 9.0, "I want to cancel my subscription"),
                  turn("long", 2, "agent", 40.0, 400.0, "let me look at that for you"),
                  turn("short", 0, "customer", 0.0, 4.0, "I want to cancel my subscription"),
                  turn("mono", 0, "unknown", 0.0, 4.0, "hello"), turn("mono", 1, "unknown", 4.5, 8.0, "hi")]
    _, categories = tag_calls(tagger, utterances, {"long": 400.0, "short": 4.0, "mono": 8.0})
    got = sorted((c["call_id"], c["category_id"]) for c in categories)
    # long: 400 s with a cancellation, 31 s of silence, the agent 363.5 of 367 s; short: 4 s, all the customer's;
    # mono: no sides, so no talk_ratio (and no category on it)
    assert got == [("long", "dead_air"), ("long", "long_churn"), ("long", "one_sided")]
    (tmp_path / "lib.yaml").write_text(LIBRARY.split("categories:")[0] + """categories:
  - id: slow
    all: [{metric: talk_speed, gt: 1}]
""")
    with pytest.raises(ConfigError, match=r"lib.yaml:\d+: categories\[0\]\.all: \[0\]: unknown metric 'talk_speed' "
                                          r"\(one of duration_s, "):
        load_signals(tmp_path)
    # a bound on another scale than its metric's, refused as in a rubric (percentages for talk_ratio's 0-1)
    (tmp_path / "lib.yaml").write_text(LIBRARY.split("categories:")[0] + """categories:
  - id: agent_heavy
    all: [{metric: talk_ratio, gt: 70}]
""")
    with pytest.raises(ConfigError, match=r"categories\[0\]\.all: \[0\]: talk_ratio runs from 0 to 1 \(the agent's "
                                          r"share: 0.5 is half the talk\), so 70 is outside it"):
        load_signals(tmp_path)

