"""Topic discovery on real parts: spaCy's tokenizer, the MiniLM embedding model, scikit-learn.

Truth comes from the inputs: `data/demo_script.yaml` marks the lines about the app crashing
after an update (`topic:`), hand-written utterances of known topics, and trend tables whose
counts (and so z-scores) are worked out by hand below.
"""
from __future__ import annotations

import dataclasses
import math
from datetime import date
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from models.topics import TopicModel, TopicModelError, cosine_distances
from pipeline.redact import redact_utterances
from pipeline.signals import load_signals
from pipeline.tag import Tagger, tag_calls
from pipeline.topic_text import is_trivial, lemmatise
from pipeline.topic_trends import TrendOptions, topic_trends
from pipeline.topics import (
    assign_topics,
    candidate_signal,
    first_seen,
    fit_topics,
    match_topics,
    select_utterances,
    topics_table,
)
from pipeline.transcripts import load_transcript

ROOT = Path(__file__).resolve().parents[1]
APP = ["The app keeps crashing since the update", "Since I updated the app it crashes every time I open it",
       "The mobile app crashed again after the latest update", "Your app shuts down as soon as I log in since the update",
       "After updating the app it just crashes on startup"]
ROAMING = ["I was charged for roaming on my trip to Spain", "Why do I have roaming charges when I was in France",
           "There are roaming fees on my bill from my holiday abroad", "I got a huge roaming charge while travelling in Italy",
           "Roaming charges from my trip to Portugal are on my bill"]
DELIVERY = ["My new router still has not been delivered", "The router I ordered two weeks ago never arrived",
            "Where is my router delivery, it is late", "My router order has not arrived yet",
            "The courier never delivered my router"]


def turns(texts: list[str], day: str, call_prefix: str) -> pd.DataFrame:
    """Selected-turn rows, one call per text."""
    return pd.DataFrame({"call_id": [f"{call_prefix}{i}" for i in range(len(texts))], "utt_idx": 0,
                         "call_date": date.fromisoformat(day), "speaker": "customer", "text": texts,
                         "lemmas": lemmatise(texts)})


# --- the demo corpus -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    """The demo calls as the pipeline stores them (redacted), tagged by the shipped library, which has no
    signal for the app crashing: nobody wrote one yet, which is what discovery is for."""
    calls = [load_transcript(p, p.name) for p in sorted((ROOT / "data/demo_transcripts").glob("*.json"))]
    utterances = [u for c in calls for u in redact_utterances(c.utterances)[0]]
    library = load_signals(ROOT / "signals")
    hits, _ = tag_calls(Tagger(library), utterances, {c.call["call_id"]: c.call["duration_s"] for c in calls})
    selected = select_utterances(pd.DataFrame(utterances), pd.DataFrame(hits))
    model = fit_topics(selected)
    script = yaml.safe_load((ROOT / "data/demo_script.yaml").read_text())
    truth = {(call["call_id"], i) for call in script["calls"] for i, line in enumerate(call["lines"])
             if line.get("topic") == "app crash after update"}
    return utterances, selected, model, truth


def test_discovery_selects_untagged_customer_turns_that_say_something(demo):
    utterances, selected, _, truth = demo
    assert set(selected["speaker"]) == {"customer"}
    texts = set(selected["text"])
    for trivial in ("Yes, speaking.", "No, that's it.", "Bye.", "It's [CARD].", "The [DOB]."):
        assert any(u["text"] == trivial for u in utterances) and trivial not in texts
    # the agent's lines and every line a library signal tags stay out
    assert "I'm going to place you on hold for a moment while I check with our technical team." not in texts
    assert not any("supervisor" in t for t in texts)
    assert len(truth & set(zip(selected["call_id"], selected["utt_idx"]))) >= 5


def test_a_batch_is_assigned_as_the_stored_window_is(demo):
    """New calls are assigned in the workers from plain rows (discover.assign), a refit's window from frames
    (select_utterances + assign_topics): both must select and assign the same turns the same way."""
    from models.topics import embed
    from pipeline import discover, topic_vectors
    from pipeline.config import TopicsConfig

    utterances, selected, model, _ = demo
    library = load_signals(ROOT / "signals")
    durations = {}  # a transcript's duration is its last turn's end, as load_transcript sets it
    for u in utterances:
        durations[u["call_id"]] = max(durations.get(u["call_id"], 0.0), u["end_s"])
    hits, _ = tag_calls(Tagger(library), utterances, durations)
    rows, (keys, vectors) = discover.assign(model, utterances, hits, TopicsConfig())
    rows, expected = rows.to_pandas(), assign_topics(model, selected)
    assert len(rows) == len(selected) > 0
    for column in ("call_id", "utt_idx", "topic_id", "weight", "call_date"):
        assert rows[column].tolist() == expected[column].tolist(), column
    # and the vectors it assigned them by, one per distinct turn, kept (at half precision) for the next fit
    texts = sorted(set(selected["text"]))
    at = np.searchsorted(keys, [topic_vectors._key(t) for t in texts])
    assert len(keys) == len(texts) and np.array_equal(vectors[at], embed(texts).astype(np.float16))


@pytest.mark.parametrize("representation", ["embedding", "tfidf"])
def test_a_fit_assigns_its_own_turns_as_assigning_them_again_would(demo, representation):
    """A refit's window rows come from the fit's own answer (the turns are not embedded a second time): they must be
    exactly what assigning the window's turns to the fitted model gives, ids matched to a previous model included."""
    from pipeline import discover
    from pipeline.config import TopicsConfig

    utterances, _, _, _ = demo
    durations = {}
    for u in utterances:
        durations[u["call_id"]] = max(durations.get(u["call_id"], 0.0), u["end_s"])
    hits = pd.DataFrame(tag_calls(Tagger(load_signals(ROOT / "signals")), utterances, durations)[0])
    cfg = TopicsConfig(representation=representation, min_topic_size=2)
    window = pd.DataFrame(utterances)
    first, _, _ = discover.fit(window, hits, None, cfg, "v1")
    first.topic_ids_, first.next_topic_id_ = first.topic_ids_ + 10, first.next_topic_id_ + 10  # a model of long ago
    shuffled = window.sample(frac=1, random_state=3)
    model, _, rows = discover.fit(shuffled, hits, first, cfg, "v2")
    expected = assign_topics(model, select_utterances(shuffled, hits, speakers=cfg.speakers))
    assert (rows["topic_id"] >= 10).sum() >= 5  # turns in topics, under the ids the old model gave them
    for column in ("call_id", "utt_idx", "topic_id", "weight", "call_date"):
        assert rows[column].tolist() == expected[column].tolist(), column


def test_app_crash_lines_form_one_emerging_topic(demo):
    _, selected, model, truth = demo
    rows = assign_topics(model, selected)
    is_crash = [(c, i) in truth for c, i in zip(rows["call_id"], rows["utt_idx"])]
    crash_topics = set(rows.loc[is_crash, "topic_id"])
    assert len(crash_topics) == 1 and -1 not in crash_topics
    topic = crash_topics.pop()
    assert not (rows.loc[[not x for x in is_crash], "topic_id"] == topic).any()   # and nothing else
    described = model.topics().set_index("topic_id").loc[topic]
    assert "app" in described["label"] or "crash" in described["label"]
    assert len(described["examples"]) == 3
    assert described["first_seen"] == date(2026, 11, 17)                         # c-0007, the first crash call
    trends = topic_trends(rows, first_seen(model)).set_index(["topic_id", "day"])
    assert trends.loc[(topic, date(2026, 11, 17)), "emerging"]
    assert not trends.loc[topic, "emerging"].drop(date(2026, 11, 17)).any()
    table = topics_table(model, "m1")
    assert list(table.columns) == ["model_version", "topic_id", "label", "top_terms", "size", "first_seen", "examples"]


def test_candidate_signal_loads_and_passes_its_own_examples(demo, tmp_path):
    _, _, model, _ = demo
    topic = model.topics().iloc[0]
    text = candidate_signal(topic, topic["examples"])
    assert text.startswith("# Generated by callintel")
    (tmp_path / "candidate.yaml").write_text(text)
    library = load_signals(tmp_path)
    (signal,) = library.signals
    assert signal.speaker == "customer" and signal.examples and (signal.phrases or signal.patterns)
    assert set(signal.examples) <= set(topic["examples"])
    assert Tagger(library).check_examples() == []


def test_a_candidate_signal_is_the_topics_words_not_its_examples_incidental_ones(tmp_path):
    """The crash topic as the demo's audio gives it (Whisper tiny.en mishears "check my usage" and "bill"): its
    candidate used to be "android phone", "phone … update" and "app … sunday", and missed the script's own
    first crash line."""
    heard = {"topic_id": 0, "label": "crash, update, phone",
             "top_terms": ["crash", "update", "phone", "phone update", "android", "android phone", "app",
                           "app sunday", "catch", "catch usage"],
             "examples": ["I may keep crashing since the update. I can't even catch my usage.",
                          "Great, and we'll meet it soon, it's been crashing on my husband's phone, too, since it "
                          "updates.",
                          "An Android phone, I updated the app on Sunday and now it crashes every time I tap on "
                          "my wheel."]}
    (tmp_path / "candidate.yaml").write_text(candidate_signal(heard, heard["examples"]))
    library = load_signals(tmp_path)
    tagger = Tagger(library)
    assert tagger.check_examples() == [] and len(library.signals[0].examples) == 3
    script = yaml.safe_load((ROOT / "data/demo_script.yaml").read_text())
    said = [(line.get("topic") == "app crash after update", line["text"]) for call in script["calls"]
            for line in call["lines"] if line["speaker"] == "customer"]
    fires = [(crash, text) for crash, text in said if tagger.match(text, "customer")[0]]
    assert (True, "Hi. The app keeps crashing since the update. I can't even check my usage.") in fires
    assert all(crash for crash, _ in fires)


def test_select_speakers_and_trivial_turns():
    utterances = pd.DataFrame({
        "call_id": "c", "utt_idx": range(6), "call_date": date(2026, 1, 1),
        "speaker": ["customer", "customer", "customer", "agent", "customer", "customer"],
        "text": ["okay thanks", "[CARD]", "Hello?", "Let me check the roaming charges on your bill",
                 "Why is there a roaming charge on my bill", "I was charged twice this month"]})
    hits = pd.DataFrame({"call_id": ["c"], "utt_idx": [5]})
    assert select_utterances(utterances, hits)["utt_idx"].tolist() == [4]
    assert select_utterances(utterances, hits, speakers=("agent",))["utt_idx"].tolist() == [3]
    assert is_trivial("yes okay thank you") and is_trivial("It's [CARD].") and not is_trivial(APP[0])


# --- the estimator ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_topics():
    return fit_topics(turns(APP + ROAMING + DELIVERY, "2026-03-02", "a"))


def test_fit_finds_the_written_topics_with_readable_labels(three_topics):
    model = three_topics
    assert model.get_params()["representation"] == "embedding" and model.n_topics_ == 3
    labels = model.labels_.reshape(3, 5)
    assert all(len(set(row)) == 1 for row in labels) and len(set(labels[:, 0])) == 3
    by_topic = dict(zip(model.topic_ids_, model.topic_labels_))
    assert "app crash" in by_topic[labels[0, 0]] and "roam" in by_topic[labels[1, 0]]
    assert "router" in by_topic[labels[2, 0]]
    fresh = TopicModel()
    texts = APP + ROAMING + DELIVERY
    np.testing.assert_allclose(fresh.fit_transform(texts), fresh.transform(texts), atol=1e-6)


def test_save_load_round_trip_and_version_check(three_topics, tmp_path):
    path = tmp_path / "topics.joblib"
    three_topics.save(path)
    loaded = TopicModel.load(path)
    texts = APP[:2] + ["where is my parcel", "hello"]
    assert np.array_equal(loaded.transform(texts), three_topics.transform(texts))
    assert loaded.topic_ids_.tolist() == three_topics.topic_ids_.tolist()
    payload = joblib.load(path)
    payload["format_version"] = 99
    joblib.dump(payload, path)
    with pytest.raises(TopicModelError, match="format version 99.*reads version 1"):
        TopicModel.load(path)
    (tmp_path / "junk.joblib").write_text("not a model")
    with pytest.raises(TopicModelError, match="not a topic model"):
        TopicModel.load(tmp_path / "junk.joblib")


def test_refit_on_shuffled_input_keeps_ids(three_topics):
    rows = turns(APP + ROAMING + DELIVERY, "2026-03-02", "a").sample(frac=1, random_state=7)
    refit = fit_topics(rows, previous=three_topics)
    texts = APP + ROAMING + DELIVERY
    assert refit.predict(texts).tolist() == three_topics.predict(texts).tolist()
    assert refit.first_seen_ == [three_topics.first_seen_[list(three_topics.topic_ids_).index(t)]
                                 for t in refit.topic_ids_]


def test_a_topic_the_old_model_lacks_gets_a_new_id_and_first_seen():
    old = fit_topics(turns(APP + ROAMING, "2026-03-02", "a"))
    window = pd.concat([turns(APP + ROAMING, "2026-03-02", "a"), turns(DELIVERY, "2026-03-05", "b")])
    new = fit_topics(window, previous=old)
    assert sorted(new.topic_ids_.tolist()) == [0, 1, 2]
    assert new.predict(APP).tolist() == old.predict(APP).tolist()
    assert new.predict(ROAMING).tolist() == old.predict(ROAMING).tolist()
    assert set(new.predict(DELIVERY)) == {2}
    assert new.first_seen_[new.topic_ids_.tolist().index(2)] == date(2026, 3, 5)
    # an id once given is never given again, even after its topic is gone
    old.next_topic_id_ = 9
    again = match_topics(fit_topics(window), old)
    assert sorted(again.topic_ids_.tolist()) == [0, 1, 9]


def test_tfidf_representation_and_tiny_inputs():
    model = TopicModel(representation="tfidf").fit(APP + ROAMING)
    assert set(model.predict(APP)) == {model.labels_[0]} and model.labels_[0] != -1
    for representation in ("embedding", "tfidf"):
        for texts in ([], ["hello"], ["my app crashes", "the app crashed again"]):
            small = TopicModel(representation=representation).fit(texts)
            assert small.n_topics_ == 0 and small.predict(["app crash"]).tolist() == [-1]
            assert small.topics().empty
        same = TopicModel(representation=representation).fit(["the app crashes after the update"] * 4)
        assert same.n_topics_ == 1 and same.labels_.tolist() == [0] * 4
    assert select_utterances(pd.DataFrame(columns=["call_id", "utt_idx", "speaker", "text", "call_date"]),
                             pd.DataFrame()).empty
    assert topic_trends(pd.DataFrame(columns=["topic_id", "call_id", "call_date"])).empty


# --- trends ----------------------------------------------------------------------------------

def trend_rows() -> pd.DataFrame:
    """Day 1: calls a1, a2 on topic 7, a3 outlier. Day 2: b1 on 7, b2 outlier.
    Day 3: c1, c2 (two turns), c3 on topic 5, c4 on 7."""
    rows = [(7, "a1", 1), (7, "a2", 1), (-1, "a3", 1), (7, "b1", 2), (-1, "b2", 2),
            (5, "c1", 3), (5, "c2", 3), (5, "c2", 3), (5, "c3", 3), (7, "c4", 3)]
    return pd.DataFrame([{"topic_id": t, "call_id": c, "call_date": date(2026, 5, d)} for t, c, d in rows])


def pooled_z(x, n, x0, n0):
    p = (x + x0) / (n + n0)
    return (x / n - x0 / n0) / math.sqrt(p * (1 - p) * (1 / n + 1 / n0))


def test_trends_against_counts_worked_by_hand():
    options = TrendOptions(baseline_days=2, z_threshold=1.5, min_calls=2, new_days=1)
    trends = topic_trends(trend_rows(), options=options).set_index(["topic_id", "day"])
    assert len(trends) == 9                                              # 3 topics x 3 days, zeros included
    day3 = trends.loc[(5, date(2026, 5, 3))]
    assert (day3["utterances"], day3["calls"]) == (4, 3)
    assert day3["share"] == 3 / 4 and day3["baseline_share"] == 0 / 5
    assert day3["z"] == pytest.approx(pooled_z(3, 4, 0, 5)) == pytest.approx(2.3717, abs=1e-4)
    assert day3["emerging"]
    seven = trends.loc[7]
    assert math.isnan(seven.loc[date(2026, 5, 1), "z"]) and math.isnan(seven.loc[date(2026, 5, 1), "baseline_share"])
    assert seven.loc[date(2026, 5, 2), "z"] == pytest.approx(pooled_z(1, 2, 2, 3))
    assert seven.loc[date(2026, 5, 3), "baseline_share"] == 3 / 5
    assert seven.loc[date(2026, 5, 3), "z"] == pytest.approx(pooled_z(1, 4, 3, 5))
    assert not seven["emerging"].any() and not trends.loc[-1, "emerging"].any()


def test_emerging_needs_a_new_topic_or_a_high_z():
    rows = trend_rows()
    old = {5: date(2026, 5, 1), 7: date(2026, 5, 1)}   # topic 5 existed before: not new on day 3
    strict = TrendOptions(baseline_days=2, z_threshold=3.0, min_calls=2, new_days=1)
    assert not topic_trends(rows, old, strict)["emerging"].any()               # z 2.37 < 3
    rising = dataclasses.replace(strict, z_threshold=2.0)
    got = topic_trends(rows, old, rising)
    assert got.loc[got["emerging"], ["topic_id", "day"]].values.tolist() == [[5, date(2026, 5, 3)]]
    few = dataclasses.replace(strict, new_min_mentions=5)                    # new, but said only 4 times
    assert not topic_trends(rows, options=few)["emerging"].any()
    assert topic_trends(rows, options=strict)["emerging"].sum() == 1         # new on its first day


def test_a_text_said_many_times_is_embedded_once_to_the_same_vector():
    from models import embedding

    texts = ["my internet keeps dropping", "the app crashes after the update", "my internet keeps dropping"]
    calls, encode = [], embedding._embed

    def counted(batch):
        calls.append(list(batch))
        return encode(batch)

    embedding._embed = counted
    try:
        vectors = embedding.embed(texts)
    finally:
        embedding._embed = encode
    assert sorted(calls[0]) == sorted(set(texts))
    assert np.array_equal(vectors[0], vectors[2]) and not np.array_equal(vectors[0], vectors[1])
    assert np.allclose(vectors, encode(texts))


def test_a_texts_vector_does_not_depend_on_the_texts_embedded_with_it():
    """The int8 maths scale each run's numbers as a whole: were texts embedded in batches, a kept vector
    would differ from the one the next fit computes, and one night's assignment from another's."""
    from models.embedding import embed

    texts = ["my internet keeps dropping", "I was charged twice for the same month and nobody called me back",
             "the app crashes after the update", "hi"]
    alone = np.vstack([embed([t]) for t in texts])
    assert np.array_equal(embed(texts), alone) and np.array_equal(embed(texts[::-1])[::-1], alone)


def test_lemmas_word_by_word_are_those_of_the_whole_turn_tokenized():
    """Lemmas are cached per word: spaCy's tokenizer must read a turn as the sum of its words."""
    from pipeline.tag_lexicon import _lemma, normalise
    from pipeline.topic_text import PLACEHOLDER, Lemmatiser

    turns = ["I don't wanna cancel, it's gonna cost me £40 isn't it?", "The app keeps CRASHING since the update...",
             "we'll ring you at 5 o'clock, can't we", "my [CARD] was declined twice", "", "kinda lemme gimme outta"]
    fresh = Lemmatiser()
    whole = [" ".join(_lemma(t.norm_) for t in fresh.nlp.tokenizer(normalise(PLACEHOLDER.sub(" ", text))))
             for text in turns]
    assert lemmatise(turns) == whole
    assert lemmatise(["I don't wanna"]) == ["i do not want to"]


@pytest.mark.parametrize("kind", ["tfidf-like", "dense", "repeated"])
def test_cosine_distances_are_scipys_and_cluster_the_same(kind):
    """The clustering's distances come from one matrix product; pdist is the definition they must keep."""
    rng = np.random.default_rng(7)
    if kind == "dense":  # embeddings: every dimension used
        vectors = rng.normal(size=(300, 48))
    else:  # TF-IDF rows: a few of many terms, non-negative; more rows than one block of the product
        vectors = rng.random((700, 400)) * (rng.random((700, 400)) < 0.02)
        vectors[:, 0] += 0.01  # no zero rows (the caller drops them)
        if kind == "repeated":  # the same turn said many times: exact ties at distance 0
            vectors = np.repeat(vectors[:70], 10, axis=0)
    ours, theirs = cosine_distances(vectors), pdist(vectors, "cosine")
    assert ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=0, atol=1e-12)
    for cut in (0.3, 0.6, 0.9):
        mine = fcluster(linkage(ours, "average"), cut, "distance")
        scipys = fcluster(linkage(theirs, "average"), cut, "distance")
        assert _partition(mine) == _partition(scipys)


def _partition(labels) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), set()).add(i)
    return {frozenset(g) for g in groups.values()}


def test_a_model_fitted_with_another_embedding_is_refit_and_tfidf_does_not_care():
    """Vectors of two embedding models are not comparable: a model whose centroids came from the one the
    product no longer runs (or from before the name was kept) is refit the next night."""
    from datetime import date

    from models.embedding import EMBEDDING_MODEL
    from pipeline import discover
    from pipeline.config import TopicsConfig

    cfg = TopicsConfig()
    fitted = {"topic_model": "topics-r1.joblib", "topic_signals_hash": "s", "topic_fit_day": "2026-11-20",
              "topic_options": discover.options_hash(cfg), "topic_embedding": EMBEDDING_MODEL}
    assert discover.refit_due(fitted, date(2026, 11, 21), "s", cfg) is None
    older = {k: v for k, v in fitted.items() if k != "topic_embedding"}
    assert discover.refit_due(older, date(2026, 11, 21), "s", cfg) == "the embedding model changed"
    tfidf = TopicsConfig(representation="tfidf")
    assert discover.refit_due({**older, "topic_options": discover.options_hash(tfidf)}, date(2026, 11, 21), "s",
                              tfidf) is None


def test_a_refit_for_turns_explained_poorly_needs_a_real_rise():
    from pipeline.config import TopicsConfig
    from pipeline.discover import poorly_explained_rising

    cfg = TopicsConfig(min_topic_size=3)
    # pooled 26/130 = 0.2: z = (14/30 - 0.12) / sqrt(0.2 * 0.8 * (1/100 + 1/30)) = 4.16
    assert poorly_explained_rising([12, 100], [14, 30], cfg) == ("turns the topics explain poorly rose from 12% at "
                                                                 "the fit to 47% since (z 4.2)")
    assert poorly_explained_rising([12, 100], [2, 4], cfg) is None            # too few turns for a topic
    assert poorly_explained_rising([12, 100], [6, 30], cfg) is None           # 20%: not significant (z 1.1)
    # a big centre: 13% against 12% is significant (z 6.8) but a drift, not a new problem
    assert poorly_explained_rising([12_000, 100_000], [13_000, 100_000], cfg) is None
    assert poorly_explained_rising([12_000, 100_000], [18_000, 100_000], cfg) is not None
