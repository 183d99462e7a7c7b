"""Topic discovery stage: which utterances, fitting with stable ids, assignment, and promotion to a signal.

Pure functions over pandas/Arrow tables; the flow does the reading and writing.

- `select_utterances`: the turns discovery works on: not tagged by any signal, by the chosen
  speakers (customer by default), and not trivial (backchannel, greetings, redacted-only, short).
- `fit_topics`: fit a `models.topics.TopicModel`, then carry the ids of the previous model over
  (`match_topics`) and date every topic's `first_seen`.
- `assign_topics`: the `utterance_topics` rows of a fitted model (outliers as topic -1).
- `topics_table`: the `topics` rows of a model.
- `candidate_signal`: a topic as YAML for `signals/`, to review and promote.

Ids stay stable across nightly runs: new turns are assigned to the existing topics; when the
model is refit (e.g. on a rolling window), refit topics are matched to the old ones by the
Hungarian method on the cosine similarity of their c-TF-IDF term vectors (terms aligned by
text, so two fits with different vocabularies compare). A pair at least `threshold` similar
keeps the old id and first_seen; any other new topic gets the next id never used before (the
model carries the high-water mark, so a retired id is never reused) and its first_seen is the
earliest call_date among its utterances.

Example:
    >>> selected = select_utterances(utterances, signal_hits)
    >>> model = fit_topics(selected, previous=TopicModel.load("topics.joblib"))
    >>> rows = assign_topics(model, selected)           # utterance_topics
    >>> print(candidate_signal(model.topics().iloc[0], model.examples_[0]))
"""
from __future__ import annotations

import copy
import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml
from scipy.optimize import linear_sum_assignment

from models.topics import TopicModel
from pipeline.signals import Signal, SignalSet
from pipeline.tag import Tagger
from pipeline.topic_text import is_trivial, lemmatise

MATCH_THRESHOLD = 0.3   # same topic: c-TF-IDF cosine of the two fits; different topics share few terms (< 0.1)
GAP = 3                 # words allowed between the two words of a bigram in a generated pattern
LABEL_WORDS = 3         # a topic's most distinctive terms, paired up for a promoted signal
MEMO_TURNS = 1 << 16    # texts remembered with their lemmas (~0.2 kB each: ~13 MB at most)


def _frame(table) -> pd.DataFrame:
    return table.to_pandas() if isinstance(table, pa.Table) else pd.DataFrame(table)


def select_utterances(utterances, signal_hits, speakers: Sequence[str] = ("customer",), min_words: int = 3,
                      min_content: int = 2) -> pd.DataFrame:
    """Untagged, non-trivial turns of the given speakers.

    utterances: call_id, utt_idx, speaker, text, call_date (the `utterances` table);
    signal_hits: at least call_id, utt_idx. Returns call_id, utt_idx, call_date, speaker, text, lemmas.
    """
    turns = _frame(utterances)
    hits = _frame(signal_hits)
    columns = ["call_id", "utt_idx", "call_date", "speaker", "text", "lemmas"]
    tagged = set(zip(hits["call_id"].tolist(), hits["utt_idx"].tolist())) if len(hits) else set()
    texts = turns["text"].fillna("").astype(str).tolist() if len(turns) else []
    keys = zip(turns["call_id"].tolist(), turns["utt_idx"].tolist(), turns["speaker"].tolist(), texts) \
        if len(turns) else []
    rows, lemmas = selected_turns(keys, tagged, speakers, min_words, min_content)
    chosen = turns.iloc[rows] if len(turns) else pd.DataFrame(columns=columns)
    return chosen.assign(text=[texts[i] for i in rows], lemmas=lemmas)[columns].reset_index(drop=True)


def selected_turns(turns: Iterable[tuple[str, int, str, str | None]], tagged: set[tuple[str, int]],
                   speakers: Sequence[str] = ("customer",), min_words: int = 3,
                   min_content: int = 2) -> tuple[list[int], list[str]]:
    """What `select_utterances` keeps, over plain (call_id, utt_idx, speaker, text) tuples: their positions
    and lemmas. A worker assigning a batch's turns uses this directly: pandas cost more than the selection."""
    wanted = set(speakers)
    candidates, texts = [], []
    for i, (call_id, utt_idx, speaker, text) in enumerate(turns):
        if speaker in wanted and (call_id, utt_idx) not in tagged:
            candidates.append(i)
            texts.append(text or "")
    found = _kept_lemmas(texts, min_words, min_content)
    kept = [k for k, lemma in enumerate(found) if lemma is not None]
    return [candidates[k] for k in kept], [found[k] for k in kept]


def _kept_lemmas(texts: list[str], min_words: int, min_content: int) -> list[str | None]:
    """Each text's lemmas, None for a trivial turn."""
    return [_kept(text, min_words, min_content) for text in texts]


@functools.lru_cache(maxsize=MEMO_TURNS)
def _kept(text: str, min_words: int, min_content: int) -> str | None:
    """Remembered per text (least recently used go first): "yes that's right", "okay thank you" and the like come
    back all night, and lemmatising them again was most of a batch's selection. A text's lemmas depend on the
    text alone, so the answers are those of lemmatising every turn."""
    lemmas = lemmatise([text])[0]
    return None if is_trivial("", lemmas, min_words, min_content) else lemmas


def fit_topics(selected: pd.DataFrame, previous: TopicModel | None = None, model: TopicModel | None = None,
               threshold: float = MATCH_THRESHOLD, vectors=None) -> TopicModel:
    """Fit `model` (default `TopicModel()`) on selected turns; ids carried over from `previous`, first_seen dated.
    vectors: the turns' embeddings, when the caller has them (TopicModel.fit)."""
    model = (model or TopicModel()).fit(selected["text"].tolist(), lemmas=selected["lemmas"].tolist(),
                                        vectors=vectors)
    days = pd.to_datetime(pd.Series(selected["call_date"].to_numpy())).dt.date
    earliest = days.groupby(model.labels_).min() if len(days) else pd.Series(dtype=object)
    model.first_seen_ = [earliest.get(t) for t in model.topic_ids_]
    model.next_topic_id_ = int(model.n_topics_)
    return match_topics(model, previous, threshold) if previous is not None else model


def match_topics(new: TopicModel, old: TopicModel, threshold: float = MATCH_THRESHOLD) -> TopicModel:
    """A copy of `new` whose topics take the ids (and first_seen) of the `old` topics they match."""
    similarity = topic_similarity(new, old)
    rows, cols = linear_sum_assignment(-similarity) if similarity.size else ([], [])
    ids = np.full(new.n_topics_, -1, np.int64)
    first_seen = list(new.first_seen_)
    for r, c in zip(rows, cols):
        if similarity[r, c] >= threshold:
            ids[r] = old.topic_ids_[c]
            first_seen[r] = old.first_seen_[c] if old.first_seen_[c] is not None else first_seen[r]
    next_id = max(getattr(old, "next_topic_id_", 0), int(old.topic_ids_.max(initial=-1)) + 1)
    for r in np.flatnonzero(ids < 0):
        ids[r], next_id = next_id, next_id + 1
    matched = copy.copy(new)
    remap = dict(zip(new.topic_ids_.tolist(), ids.tolist()))
    matched.topic_ids_ = ids
    matched.labels_ = np.array([remap.get(t, -1) for t in new.labels_.tolist()], np.int64)
    matched.first_seen_ = first_seen
    matched.next_topic_id_ = next_id
    return matched


def topic_similarity(a: TopicModel, b: TopicModel) -> np.ndarray:
    """Cosine similarity of a's topics (rows) and b's topics (columns) over their c-TF-IDF term vectors."""
    vectors_a = [a.term_vector(i) for i in range(a.n_topics_)]
    vectors_b = [b.term_vector(j) for j in range(b.n_topics_)]
    terms = {t: k for k, t in enumerate(sorted({t for v in vectors_a + vectors_b for t in v}))}

    def matrix(vectors):
        m = np.zeros((len(vectors), max(len(terms), 1)))
        for i, v in enumerate(vectors):
            m[i, [terms[t] for t in v]] = list(v.values())
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(norms > 0, norms, 1)

    return matrix(vectors_a) @ matrix(vectors_b).T


def assign_topics(model: TopicModel, selected: pd.DataFrame, fitted: bool = False) -> pd.DataFrame:
    """`utterance_topics` rows: call_id, utt_idx, topic_id (-1: outlier), weight (similarity), call_date.

    fitted: `selected` are the turns the model was just fitted on, in that order; the fit's own answer is used
    (the same ids and weights as assigning them again, without embedding them twice: half a refit's time).
    """
    if fitted:
        ids, weights = model.labels_, model.weights_
    elif len(selected):
        # the lemmas selection computed: lemmatising again was a third of assignment's time (TF-IDF)
        ids, weights = model.assign(selected["text"].tolist(), lemmas=selected["lemmas"].tolist())
    else:
        ids, weights = np.array([], int), np.array([])
    return pd.DataFrame({"call_id": selected["call_id"].to_numpy(), "utt_idx": selected["utt_idx"].to_numpy(),
                         "topic_id": np.asarray(ids, np.int32), "weight": np.asarray(weights, np.float32),
                         "call_date": selected["call_date"].to_numpy()})


def topics_table(model: TopicModel, model_version: str) -> pd.DataFrame:
    """`topics` rows: model_version, topic_id, label, top_terms, size, first_seen, examples."""
    topics = model.topics()
    return topics.assign(model_version=model_version)[
        ["model_version", "topic_id", "label", "top_terms", "size", "first_seen", "examples"]]


# --- promotion -------------------------------------------------------------------------------

def candidate_signal(topic: Mapping, examples: Sequence[str]) -> str:
    """YAML of a candidate signal for a topic (a row of `topics_table`/`TopicModel.topics()`).

    Made of the topic's distinctive terms (its c-TF-IDF order), most specific first: two of its three
    label words near each other ("app … crash"), then its bigrams, then single terms, each as a phrase
    when it fires on an example as written, else as a token pattern on lemmas ("crash" then fires on
    "keeps crashing"; a pair's words may have a few words between them). One is taken while it fires on
    an example none taken before fires on, until every example is covered: a single word ("app") only
    when nothing more specific fires, and never the incidental bigrams of the examples ("app sunday")
    once they are covered. Only the examples the signal fires on are kept, so `callintel check` passes.
    """
    label = str(topic["label"])
    signal_id = _snake(label)
    terms = [str(t) for t in topic["top_terms"]]
    examples = [e for e in dict.fromkeys(examples) if e and e.strip()]
    words = [t for t in terms[:LABEL_WORDS] if " " not in t]
    pairs = [f"{a} {b}" for a, b in itertools.permutations(words, 2)]
    phrases, patterns, covered = [], [], set()
    for term in pairs + [t for t in terms if " " in t] + [t for t in terms if " " not in t]:
        kind, matcher, fired = _matcher(signal_id, term, examples)
        if set(fired) - covered:
            (phrases if kind == "phrase" else patterns).append(matcher)
            covered |= set(fired)
        if covered == set(examples):
            break
    if not phrases and not patterns:     # nothing fires on the examples: keep the terms for the reviewer
        phrases, examples = terms[:5] or [label], []
    kept = _fired(Signal(id=signal_id, speaker="customer", phrases=phrases, patterns=patterns), examples)
    body = {"id": signal_id,
            "description": f"Discovered topic {topic['topic_id']}: {label}",
            "speaker": "customer"}
    body |= {"phrases": phrases} if phrases else {}
    body |= {"patterns": [_Flow(p) for p in patterns]} if patterns else {}
    body |= {"examples": kept} if kept else {}
    header = (f"# Generated by callintel from discovered topic {topic['topic_id']} ({label!r}).\n"
              "# A candidate, not a tested signal: review the phrases and examples, add counter_examples,\n"
              "# then move it into signals/. It matches only what its phrases say, not the topic model.\n")
    return header + yaml.dump({"signals": [body]}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Flow(list):
    """A token pattern, written on one line as in DESIGN.md: [{LEMMA: app}, {OP: '?'}, {LEMMA: crash}]."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _snake(label: str) -> str:
    words = re.findall(r"[a-z0-9]+", label.lower())
    unique = list(dict.fromkeys(words))[:5]
    name = "_".join(unique) or "topic"
    return name if name[0].isalpha() else f"topic_{name}"


def _gapped(bigram: str) -> list[dict]:
    first, second = bigram.split()
    return [{"LEMMA": first}] + [{"OP": "?"} for _ in range(GAP)] + [{"LEMMA": second}]


def _matcher(signal_id: str, term: str, examples: list[str]) -> tuple[str, str | list[dict], list[str]]:
    """("phrase", term) when the term fires on an example as written, else ("pattern", its lemmas as a token
    pattern, gapped for a bigram); with the examples it fires on."""
    if fired := _fired(Signal(id=signal_id, speaker="customer", phrases=[term]), examples):
        return "phrase", term, fired
    pattern = _gapped(term) if " " in term else [{"LEMMA": term}]
    return "pattern", pattern, _fired(Signal(id=signal_id, speaker="customer", patterns=[pattern]), examples)


def _fired(signal: Signal, examples: list[str]) -> list[str]:
    """The examples the signal fires on, with the product's own matcher (negation included)."""
    if not examples:
        return []
    tagger = Tagger(SignalSet((signal,), (), {signal.id: "candidate"}, ""))
    return [e for e in examples if any(h.signal_id == signal.id for h in tagger.match(e, "customer")[0])]


def first_seen(model: TopicModel) -> dict[int, date]:
    """topic_id -> first_seen, for `pipeline.topic_trends.topic_trends`."""
    return {int(t): d for t, d in zip(model.topic_ids_, model.first_seen_) if d is not None}
