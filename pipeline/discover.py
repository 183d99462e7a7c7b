"""The discover stage: when to refit the topic model, and the rows a fit or an assignment produces.

Ids stay stable across nights: each night's new turns are assigned to the current model in the
same commit as their call; every `refit_days` (or when the signals or topic options change, so
the set of untagged turns changed) the model is refit on the last `window_days` and its topics
matched to the old ones (pipeline/topics.py), and the window's assignments are replaced. The
turns' sentence vectors are kept between fits (pipeline/topic_vectors.py).

A new problem cannot wait a week for the refit: its turns are outliers of the current model, or sit at
its topics' edges. So a turn counts as explained poorly when it is an outlier or less similar to its
topic than nine in ten of the fit's members were; when the share of such turns since the fit rises
above the fit's own share (by 5 points, and by the trend views' z-test, z >= 3, with at least
`min_topic_size` of them), the model is refit that night.
"""
from __future__ import annotations

import hashlib
import json
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from models.topics import EMBEDDING_MODEL, TopicModel, TopicModelError, embed
from pipeline import topic_vectors
from pipeline.config import TopicsConfig
from pipeline.schemas import conform
from pipeline.topics import assign_topics, fit_topics, select_utterances, selected_turns, topics_table
from pipeline.views import Z_THRESHOLD


FIRST_EMBEDDING = "all-MiniLM-L6-v2-onnx-int8"  # the float32 maths: models fitted before topic_embedding was kept
EDGE_PERCENTILE = 10  # a member less similar to its topic than this percentile of the fit's is at its edge
# and the least rise of the share explained poorly worth a refit: on a large centre's nights the z-test alone
# would call for one at a drift of a point or two
MIN_RISE = 0.05


def options_hash(cfg: TopicsConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]


def refit_due(meta: dict, newest_day: date | None, signals_hash: str, cfg: TopicsConfig) -> str | None:
    """Why the model must be refit now, or None."""
    if newest_day is None:
        return None
    if not meta.get("topic_model"):
        # a model `forget` dropped held the forgotten calls' turns: say so, not "no model", which reads as lost
        dropped = meta.get("topic_model_dropped")
        return f"the topic model was dropped by {dropped} (it held the forgotten calls' turns)" if dropped else (
            "no topic model yet")
    if meta.get("topic_signals_hash") != signals_hash:
        return "signals changed, so did the untagged turns"
    if meta.get("topic_refit_due"):  # pipeline.redact_archive: the model file must not keep the old text
        return meta["topic_refit_due"]
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

    writer: the flow's (writer.Writer: store, run, tagger, topic_model, commit, assigned, topics_assigned);
    fit_task: `fit`, or the flow's Prefect task of it.
    """
    store, run, library = writer.store, writer.run, writer.tagger.library
    newest = _newest_day(store)
    meta = store.meta()
    meta = meta if writer.topic_model is not None else {"topic_model_dropped": meta.get("topic_model_dropped")}
    why = refit_due(meta, newest, library.hash, cfg)
    since = None
    if why is None and meta.get("topic_poorly_at_fit"):
        tonight = [_poorly(rows, meta["topic_edge"]) for rows in writer.topics_assigned]
        since = np.sum([meta.get("topic_poorly_since", [0, 0]), *tonight], axis=0).tolist()
        why = poorly_explained_rising(meta["topic_poorly_at_fit"], since, cfg)
    if why is None:
        _keep_for_next_fit(writer, newest, cfg, since, meta)
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
                  meta={"topic_model": filename, "topic_model_dropped": None, "topic_vectors": vectors.saved,
                        "topic_vectors_assigned": [],
                        "topic_fit_day": newest.isoformat(), "topic_signals_hash": library.hash,
                        "topic_refit_due": None, "topic_options": options_hash(cfg),
                        "topic_embedding": EMBEDDING_MODEL, **_fit_edge(rows)})
    writer.topic_model = model
    store.drop_stale_models()  # the model and vectors this fit replaced (a window's vectors can be gigabytes)
    embedded = f" ({vectors.embedded} texts embedded, {vectors.reused} kept from earlier runs)" if vectors.saved else ""
    run.notes.append(f"topic model refit ({why}): {model.n_topics_} topic{'s' * (model.n_topics_ != 1)} "
                     f"from {len(rows)} untagged turns "
                     f"of {start} to {newest}{embedded}")


def _keep_for_next_fit(writer, newest: date, cfg: TopicsConfig, since: list[int] | None, meta: dict) -> None:
    """A night without a refit: keep the vectors of the turns it assigned, and how well they were explained."""
    store, kept = writer.store, {}
    if writer.assigned:
        kept["topic_vectors_assigned"] = topic_vectors.save_assigned(store, writer.run.run_id, writer.assigned, newest,
                                                                     window_start(newest, cfg))
    if since is not None and since != meta.get("topic_poorly_since"):
        kept["topic_poorly_since"] = since
    if kept:
        writer.commit({}, meta=kept)
    if writer.assigned:
        store.drop_stale_models()  # those now older than any window a refit will see


def _poorly(rows, edge: float) -> list[int]:
    """[turns explained poorly (outliers, or at a topic's edge), turns] of utterance_topics rows."""
    ids, weights = np.asarray(rows["topic_id"], np.int64), np.asarray(rows["weight"], np.float64)
    return [int(np.sum((ids < 0) | (weights < edge))), len(ids)]


def _fit_edge(rows: pd.DataFrame) -> dict:
    """What a fit records to judge the nights after it: its topics' edge, and its own share explained poorly."""
    members = rows.loc[rows["topic_id"] >= 0, "weight"].to_numpy(np.float64)
    edge = float(np.percentile(members, EDGE_PERCENTILE)) if len(members) else 1.0
    return {"topic_edge": edge, "topic_poorly_at_fit": _poorly(rows, edge), "topic_poorly_since": [0, 0]}


def poorly_explained_rising(at_fit: list[int], since: list[int], cfg: TopicsConfig) -> str | None:
    """Why the turns since the fit call for a refit, or None: their share explained poorly is above the fit's by
    MIN_RISE and by the trend views' two-proportion z-test (z >= Z_THRESHOLD), and they are enough for a topic."""
    (a, n), (b, m) = at_fit, since
    if b < cfg.min_topic_size or not n or not m or b / m - a / n < MIN_RISE:
        return None
    pooled = (a + b) / (n + m)
    z = (b / m - a / n) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if z < Z_THRESHOLD:
        return None
    return f"turns the topics explain poorly rose from {a / n:.0%} at the fit to {b / m:.0%} since (z {z:.1f})"


def load_topic_model(store, run) -> TopicModel | None:
    """The store's current topic model, or None (none yet, or not usable: the run notes it and refits)."""
    path = store.model_path()
    if path is None:
        return None
    try:
        return TopicModel.load(path)
    except (TopicModelError, OSError, ValueError) as exc:
        run.notes.append(f"topic model not usable ({exc}); refitting")
        return None


def _newest_day(store) -> date | None:
    newest = store.meta().get("newest_day")
    if newest is None and store.manifest()["calls"]:  # a store written before newest_day was recorded
        newest = max(store.read("calls", ["call_date"]).column("call_date").to_pylist()).isoformat()
    return date.fromisoformat(newest) if newest else None


def _arrow(frame: pd.DataFrame) -> pa.Table | list:
    """A pandas frame as an Arrow table (an empty frame as no rows: it may lack the columns)."""
    return pa.Table.from_pandas(frame, preserve_index=False) if len(frame) else []
