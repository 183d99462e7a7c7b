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

import pandas as pd

from models.topics import TopicModel
from pipeline.config import TopicsConfig
from pipeline.topics import assign_topics, fit_topics, select_utterances, topics_table


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


def fit(utterances, hits, previous: TopicModel | None, cfg: TopicsConfig, version: str
        ) -> tuple[TopicModel, pd.DataFrame, pd.DataFrame]:
    """(model, topics rows, utterance_topics rows) of a fit on the window's utterances and hits."""
    selected = select_utterances(utterances, hits, speakers=cfg.speakers)
    model = TopicModel(representation=cfg.representation, min_topic_size=cfg.min_topic_size)
    model = fit_topics(selected, previous=previous, model=model)
    return model, topics_table(model, version), assign_topics(model, selected)


def assign(model: TopicModel | None, utterances: list[dict], hits: list[dict], cfg: TopicsConfig) -> pd.DataFrame:
    """utterance_topics rows of new calls under the current model (none before the first fit)."""
    if model is None or not utterances:
        return pd.DataFrame()
    columns = ["call_id", "utt_idx", "speaker", "text", "call_date"]
    frame = pd.DataFrame([{k: u[k] for k in columns} for u in utterances])
    hit_frame = pd.DataFrame(hits, columns=["call_id", "utt_idx"]) if hits else pd.DataFrame(columns=["call_id", "utt_idx"])
    return assign_topics(model, select_utterances(frame, hit_frame, speakers=cfg.speakers))
