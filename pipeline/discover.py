"""The discover stage: when to refit the topic model, and the rows a fit or an assignment produces.

Ids stay stable across nights: each night's new turns are assigned to the current model in the
same commit as their call; every `refit_days` (or when the signals or topic options change, so
the set of untagged turns changed) the model is refit on the last `window_days` and its topics
matched to the old ones (pipeline/topics.py), and the window's assignments are replaced. The
turns' sentence vectors are kept between fits (pipeline/topic_vectors.py).
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from models.topics import EMBEDDING_MODEL, TopicModel, embed
from pipeline import topic_vectors
from pipeline.config import TopicsConfig
from pipeline.schemas import conform
from pipeline.topics import assign_topics, fit_topics, select_utterances, selected_turns, topics_table


FIRST_EMBEDDING = "all-MiniLM-L6-v2-onnx-int8"  # the float32 maths: models fitted before topic_embedding was kept


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
    if cfg.representation == "embedding" and meta.get("topic_embedding", FIRST_EMBEDDING) != EMBEDDING_MODEL:
        return "the embedding model changed"
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


def assign(model: TopicModel | None, utterances: list[dict], hits: list[dict], cfg: TopicsConfig
           ) -> tuple[pa.Table | list, topic_vectors.Keyed | None]:
    """utterance_topics rows of new calls under the current model (none before the first fit), and with
    embedding topics the vectors of the turns assigned, which the flow keeps for the next fit."""
    if model is None or not utterances:
        return [], None
    tagged = {(h["call_id"], h["utt_idx"]) for h in hits}
    turns = ((u["call_id"], u["utt_idx"], u["speaker"], u["text"]) for u in utterances)
    rows, lemmas = selected_turns(turns, tagged, speakers=cfg.speakers)
    chosen = [utterances[i] for i in rows]
    texts = [u["text"] or "" for u in chosen]
    vectors = embed(texts) if texts and model.representation == "embedding" else None
    ids, weights = model.assign(texts, lemmas=lemmas, vectors=vectors) if chosen else ([], [])
    return conform("utterance_topics", pa.table({
        "call_id": [u["call_id"] for u in chosen], "utt_idx": pa.array([u["utt_idx"] for u in chosen], pa.int32()),
        "topic_id": pa.array(np.asarray(ids, np.int32)), "weight": pa.array(np.asarray(weights, np.float32)),
        "call_date": pa.array([u["call_date"] for u in chosen], pa.date32())})), \
        None if vectors is None else topic_vectors.keyed(texts, vectors)


def update(writer, cfg: TopicsConfig, fit_task=fit) -> None:
    """The night's topics step: refit the model on the recent window when it is due, else keep the vectors of
    the turns the night assigned for the next fit. New calls were assigned as they were stored.

    writer: the flow's (flows._Writer: store, run, tagger, topic_model, commit, assigned); fit_task: `fit`, or
    the flow's Prefect task of it.
    """
    store, run, library = writer.store, writer.run, writer.tagger.library
    newest = _newest_day(store)
    meta = store.meta() if writer.topic_model is not None else {}
    why = refit_due(meta, newest, library.hash, cfg)
    if why is None:
        if writer.assigned:
            kept = topic_vectors.save_assigned(store, run.run_id, writer.assigned, newest, window_start(newest, cfg))
            writer.commit({}, meta={"topic_vectors_assigned": kept})
            store.drop_stale_models()  # those now older than any window a refit will see
        return
    start = window_start(newest, cfg)
    utterances = store.read("utterances", ["call_id", "utt_idx", "speaker", "text", "call_date"], since=start)
    hits = store.read("signal_hits", ["call_id", "utt_idx"], since=start)
    vectors = topic_vectors.Cache(store, run.run_id, writer.assigned)
    model, topics, rows = fit_task(utterances.to_pandas(), hits.to_pandas(), writer.topic_model, cfg, run.run_id,
                                   cache=vectors)
    filename = f"topics-{run.run_id}.joblib"
    store.save_model(filename, model.save)
    # Earlier models' topics stay (their trend lines keep their labels), no longer current: one this fit
    # dropped must not be listed, or promoted, as a topic of today's model.
    earlier = conform("topics", store.read("topics"))
    earlier = earlier.set_column(earlier.schema.get_field_index("current"), "current",
                                 pa.array([False] * len(earlier), pa.bool_()))
    writer.commit({"topics": pa.concat_tables([earlier, conform("topics", _arrow(topics.assign(current=True)))]),
                   "utterance_topics": _arrow(rows)},
                  remove={"utterance_topics": store.parts_since("utterance_topics", start),
                          "topics": store.manifest()["topics"]},
                  meta={"topic_model": filename, "topic_vectors": vectors.saved, "topic_vectors_assigned": [],
                        "topic_fit_day": newest.isoformat(), "topic_signals_hash": library.hash,
                        "topic_options": options_hash(cfg), "topic_embedding": EMBEDDING_MODEL})
    writer.topic_model = model
    store.drop_stale_models()  # the model and vectors this fit replaced (a window's vectors can be gigabytes)
    embedded = f" ({vectors.embedded} texts embedded, {vectors.reused} kept from earlier runs)" if vectors.saved else ""
    run.notes.append(f"topic model refit ({why}): {model.n_topics_} topics from {len(rows)} untagged turns "
                     f"of {start} to {newest}{embedded}")


def _newest_day(store) -> date | None:
    newest = store.meta().get("newest_day")
    if newest is None and store.manifest()["calls"]:  # a store written before newest_day was recorded
        newest = max(store.read("calls", ["call_date"]).column("call_date").to_pylist()).isoformat()
    return date.fromisoformat(newest) if newest else None


def _arrow(frame: pd.DataFrame) -> pa.Table | list:
    """A pandas frame as an Arrow table (an empty frame as no rows: it may lack the columns)."""
    return pa.Table.from_pandas(frame, preserve_index=False) if len(frame) else []
