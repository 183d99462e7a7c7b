"""The discover stage: when to refit the topic model, and the rows a fit or an assignment produces.

Ids stay stable across nights: each night's new turns are assigned to the current model in the
same commit as their call; every `refit_days` (or when the signals or topic options change, so
the set of untagged turns changed) the model is refit on the last `window_days` and its topics
matched to the old ones (pipeline/topics.py), and the window's assignments are replaced.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from models.topics import TopicModel
from pipeline.config import TopicsConfig
from pipeline.schemas import conform
from pipeline.topics import assign_topics, fit_topics, select_utterances, selected_turns, topics_table


def options_hash(cfg: TopicsConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]


def refit_due(meta: dict, newest_day: date | None, signals_hash: str, cfg: TopicsConfig) -> str | None:
    """Why the model must be refit now, or None."""
    if newest_day is None:
        return None
    if not meta.get("topic_model"):
        return "no topic model yet"
    if meta.get("topic_signals_hash") != signals_hash:
        return "signals changed, so did the untagged turns"
    if meta.get("topic_options") != options_hash(cfg):
        return "topic options changed"
    if (newest_day - date.fromisoformat(meta["topic_fit_day"])).days >= cfg.refit_days:
        return f"the model is {cfg.refit_days}+ days older than the newest call"
    return None


def window_start(newest_day: date, cfg: TopicsConfig) -> date:
    return newest_day - timedelta(days=cfg.window_days - 1)


def fit(utterances, hits, previous: TopicModel | None, cfg: TopicsConfig, version: str, cache=None
        ) -> tuple[TopicModel, pd.DataFrame, pd.DataFrame]:
    """(model, topics rows, utterance_topics rows) of a fit on the window's utterances and hits.

    cache: a pipeline.topic_vectors.Cache, for embedding topics: the last fit's vectors, and this one's saved.
    """
    selected = select_utterances(utterances, hits, speakers=cfg.speakers)
    model = TopicModel(representation=cfg.representation, min_topic_size=cfg.min_topic_size)
    vectors = None
    if cache is not None and cfg.representation == "embedding" and len(selected):
        vectors = cache.vectors(selected["text"].tolist())
    model = fit_topics(selected, previous=previous, model=model, vectors=vectors)
    return model, topics_table(model, version), assign_topics(model, selected, fitted=True)


def assign(model: TopicModel | None, utterances: list[dict], hits: list[dict], cfg: TopicsConfig) -> pa.Table | list:
    """utterance_topics rows of new calls under the current model (none before the first fit)."""
    if model is None or not utterances:
        return []
    tagged = {(h["call_id"], h["utt_idx"]) for h in hits}
    turns = ((u["call_id"], u["utt_idx"], u["speaker"], u["text"]) for u in utterances)
    rows, lemmas = selected_turns(turns, tagged, speakers=cfg.speakers)
    chosen = [utterances[i] for i in rows]
    ids, weights = model.assign([u["text"] or "" for u in chosen], lemmas=lemmas) if chosen else ([], [])
    return conform("utterance_topics", pa.table({
        "call_id": [u["call_id"] for u in chosen], "utt_idx": pa.array([u["utt_idx"] for u in chosen], pa.int32()),
        "topic_id": pa.array(np.asarray(ids, np.int32)), "weight": pa.array(np.asarray(weights, np.float32)),
        "call_date": pa.array([u["call_date"] for u in chosen], pa.date32())}))
