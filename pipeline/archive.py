"""Stored calls brought up to date when the rules change, from stored tables (no ASR).

`retag` when signals/ changed since the calls were tagged; `rescore` when rubrics, flag rules or signals
changed, or calls were stored without metrics by an older release. `writer` is the flow's: it commits
whole tables and counts what it did; the stage functions are passed in so the flow can give its
Prefect tasks.
"""
from __future__ import annotations

from pipeline import qa, tag

UTTERANCE_COLUMNS = ["call_id", "utt_idx", "speaker", "start_s", "text", "call_date"]
CALL_COLUMNS = ["call_id", "call_date", "duration_s", "queue", "direction"]


def retag(writer, tag_calls=tag.tag_calls) -> bool:
    """signals/ changed since the stored calls were tagged: re-tag them all from stored text, no ASR."""
    store, library = writer.store, writer.tagger.library
    if store.meta().get("signals_hash") == library.hash:
        return False
    old = store.manifest()  # read once: the parts it names are the ones the new tags replace
    if not old["calls"]:
        return False
    utterances = store.read("utterances", UTTERANCE_COLUMNS).to_pylist()
    calls = store.read("calls", ["call_id", "duration_s"]).to_pylist()
    hits, categories = tag_calls(writer.tagger, utterances, {c["call_id"]: c["duration_s"] for c in calls})
    writer.commit({"signal_hits": hits, "call_categories": categories},
                  remove={"signal_hits": old["signal_hits"], "call_categories": old["call_categories"]})
    writer.run.counts["retagged"] = len(calls)
    writer.run.notes.append(f"signals changed (now {library.hash}): re-tagged {len(calls)} stored calls")
    return True


def rescore(writer, retagged: bool, score_calls=qa.assess) -> None:
    """Rubrics, flag rules or signals changed: re-score every stored call from stored tables, no ASR.

    Scorecards of rubric versions no longer configured are kept. Calls stored without metrics (by an
    older release) get them now.
    """
    store, rules, run = writer.store, writer.rules, writer.run
    meta, manifest = store.meta(), store.manifest()  # nothing is committed before the one commit below
    if not manifest["calls"] or (not retagged and meta.get("qa_hash") == rules.hash and meta.get("metrics_complete")):
        return  # the usual night: nothing to re-score, and no need to read the archive to know it
    calls = store.read("calls", CALL_COLUMNS).to_pylist()
    metrics = store.read("call_metrics").to_pylist()
    missing = {c["call_id"] for c in calls} - {m["call_id"] for m in metrics}
    if not retagged and not missing and meta.get("qa_hash") == rules.hash:
        return
    words = ["words"] if missing else []  # word times only matter for metrics not stored yet
    utterances = sorted(store.read("utterances", UTTERANCE_COLUMNS + ["end_s", "sentiment"] + words).to_pylist(),
                        key=lambda u: (u["call_id"], u["utt_idx"]))
    utterances = qa.add_sentiment(utterances)  # only for calls stored before sentiment existed; not written back
    added = qa.call_metrics([c for c in calls if c["call_id"] in missing],
                            [u for u in utterances if u["call_id"] in missing])
    new = score_calls(rules, writer.tagger.library, calls, utterances, store.read("signal_hits").to_pylist(),
                      store.read("call_categories").to_pylist(), run.run_id, metrics=metrics + added)
    old = {name: store.read(name).to_pylist() for name in ("scorecards", "scorecard_items", "flags")}
    tables = qa.rescored(rules, old["scorecards"], old["scorecard_items"], old["flags"], new)
    writer.commit({**tables, "call_metrics": added}, remove={name: manifest[name] for name in tables})
    writer.count_scored("rescored", new)
    run.notes.append(f"rubrics/flags (now {rules.hash}) or signals changed: re-scored {len(calls)} stored calls")
