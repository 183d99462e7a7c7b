"""Stored calls brought up to date when the rules change, from stored tables (no ASR).

`retag` when signals/ changed since the calls were tagged; `rescore` when rubrics, flag rules or signals
changed, or calls were stored without metrics by an older release. `writer` is the flow's: it commits
whole tables and counts what it did; the stage functions are passed in so the flow can give its
Prefect tasks.

The archive is taken a few days at a time (about ARCHIVE_CALLS calls, never part of a day), each group in
its own commit, so memory is bounded by a group, not by the archive: a 90-day archive of a large centre
is millions of calls. A run killed between two commits leaves the store saying the work is still due
(`signals_hash` unchanged, or `rescore_due`), and the next run does it again, whole.
"""
from __future__ import annotations

from datetime import date

from pipeline import qa, tag
from pipeline.store import day_groups

UTTERANCE_COLUMNS = ["call_id", "utt_idx", "speaker", "start_s", "text", "call_date"]
CALL_COLUMNS = ["call_id", "call_date", "duration_s", "queue", "direction"]
ARCHIVE_CALLS = 20_000  # stored calls re-tagged or re-scored per commit (about 1.5 GB of rows in memory)


def _day_groups(store) -> list[set[date]]:
    """The stored days in groups of about ARCHIVE_CALLS calls."""
    counts = store.read("calls", ["call_date"]).column("call_date").value_counts().to_pylist()
    return day_groups({c["values"]: c["counts"] for c in counts}, ARCHIVE_CALLS)


def retag(writer, tag_calls=tag.tag_calls) -> bool:
    """signals/ changed since the stored calls were tagged: re-tag them all from stored text, no ASR."""
    store, library = writer.store, writer.tagger.library
    before = store.meta().get("signals_hash")
    if before == library.hash:
        return False
    groups = _day_groups(store)
    retagged = 0
    for n, days in enumerate(groups, 1):
        utterances = store.read("utterances", UTTERANCE_COLUMNS, days=days).to_pylist()
        calls = store.read("calls", ["call_id", "duration_s"], days=days).to_pylist()
        hits, categories = tag_calls(writer.tagger, utterances, {c["call_id"]: c["duration_s"] for c in calls})
        # the new hash only with the last group; scorecards are stale from the first until re-scored
        done = {} if n == len(groups) else {"signals_hash": before}
        writer.commit({"signal_hits": hits, "call_categories": categories},
                      remove={name: store.parts_of(name, days) for name in ("signal_hits", "call_categories")},
                      meta={**done, "rescore_due": True})
        retagged += len(calls)
    if not retagged:
        return False
    writer.run.counts["retagged"] = retagged
    writer.run.notes.append(f"signals changed (now {library.hash}): re-tagged {retagged} stored calls")
    return True


def rescore(writer, retagged: bool, score_calls=qa.assess) -> None:
    """Rubrics, flag rules or signals changed: re-score every stored call from stored tables, no ASR.

    Scorecards of rubric versions no longer configured are kept. Calls stored without metrics (by an
    older release) get them now.
    """
    store, rules, run = writer.store, writer.rules, writer.run
    meta = store.meta()
    if not store.manifest()["calls"]:
        return
    due = retagged or meta.get("rescore_due") or meta.get("qa_hash") != rules.hash
    if not due and (meta.get("metrics_complete") or not _calls_without_metrics(store)):
        return  # the usual night: nothing to re-score, and no need to read the archive to know it
    groups = _day_groups(store)
    rescored = sum(_rescore_days(writer, days, score_calls, last=n == len(groups))
                   for n, days in enumerate(groups, 1))
    run.notes.append(f"rubrics/flags (now {rules.hash}) or signals changed: re-scored {rescored} stored calls")


def _calls_without_metrics(store) -> bool:
    calls = set(store.read("calls", ["call_id"]).column("call_id").to_pylist())
    return bool(calls - set(store.read("call_metrics", ["call_id"]).column("call_id").to_pylist()))


def _rescore_days(writer, days: set[date], score_calls, last: bool) -> int:
    """Re-score the calls of these days in one commit; returns how many."""
    store, rules, run = writer.store, writer.rules, writer.run
    calls = store.read("calls", CALL_COLUMNS, days=days).to_pylist()
    metrics = store.read("call_metrics", days=days).to_pylist()
    missing = {c["call_id"] for c in calls} - {m["call_id"] for m in metrics}
    words = ["words"] if missing else []  # word times only matter for metrics not stored yet
    utterances = sorted(store.read("utterances", UTTERANCE_COLUMNS + ["end_s", "sentiment"] + words,
                                   days=days).to_pylist(), key=lambda u: (u["call_id"], u["utt_idx"]))
    utterances = qa.add_sentiment(utterances)  # only for calls stored before sentiment existed; not written back
    added = qa.call_metrics([c for c in calls if c["call_id"] in missing],
                            [u for u in utterances if u["call_id"] in missing])
    new = score_calls(rules, writer.tagger.library, calls, utterances,
                      store.read("signal_hits", days=days).to_pylist(),
                      store.read("call_categories", days=days).to_pylist(), run.run_id, metrics=metrics + added)
    old = {name: store.read(name, days=days).to_pylist() for name in ("scorecards", "scorecard_items", "flags")}
    tables = qa.rescored(rules, old["scorecards"], old["scorecard_items"], old["flags"], new)
    writer.commit({**tables, "call_metrics": added}, remove={name: store.parts_of(name, days) for name in tables},
                  meta={"rescore_due": not last})
    writer.count_scored("rescored", new)
    return len(calls)
