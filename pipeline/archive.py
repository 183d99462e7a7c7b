"""Stored calls brought up to date when the rules change, from stored tables (no ASR).

`retag` when signals/ changed since the calls were tagged; `rescore` when rubrics, flag rules or signals
changed, or calls were stored without metrics by an older release. Both, with the metrics computed again, when
the code that tags and scores changed since the calls were stored (`RULES_CODE`: an upgrade). `writer` is the
flow's: it commits whole tables and counts what it did; the stage functions are passed in so the flow can give
its Prefect tasks.

The archive is taken a few days at a time (about ARCHIVE_CALLS calls, never part of a day), each group in
its own commit, so memory is bounded by a group, not by the archive: a 90-day archive of a large centre
is millions of calls. A run killed between two commits leaves the store saying the work is still due
(`signals_hash` unchanged, or `rescore_due`), and the next run does it again, whole.

Re-tagging and re-scoring are most of a rule-change night after the pages, so they are spread like an import
(`Spread`): this process reads a group's stored rows (Arrow, cheap) and sends them to a worker process or to
the Dask cluster, which tags or scores them; the groups come back in order and are committed here.
"""
from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import parallel, qa
from pipeline.progress import bar
from pipeline.rubric import load_qa
from pipeline.scorecard import page_code
from pipeline.schemas import conform
from pipeline.signals import load_signals
from pipeline.store import day_groups

UTTERANCE_COLUMNS = ["call_id", "utt_idx", "speaker", "start_s", "text", "call_date"]
CALL_COLUMNS = ["call_id", "call_date", "duration_s", "queue", "direction"]
ARCHIVE_CALLS = 20_000  # stored calls re-tagged or re-scored per commit (about 1.5 GB of rows in memory)
SPREAD_FROM = 2_000  # stored calls from which the archive is worth starting worker processes for
SCORED = ("scorecards", "scorecard_items", "flags")  # what a re-score replaces, day by day
# Every module whose code decides tags, metrics, scores and flags (tests/test_upgrade.py keeps this list whole).
# The signals and rules hashes cover only the YAML: without this, a release that tags or scores differently
# (mono calls scored on their words, a negation that stops at a courtesy word) would judge the calls stored
# before it by the old code for ever, beside new calls judged by the new, and trends would step at the upgrade.
RULES_CODE = ("signals.py", "tag.py", "tag_lexicon.py", "prefilter.py", "metrics.py", "rubric.py", "score.py",
              "flags.py", "qa.py")
MODEL_CODE = ("sentiment.py",)  # in models/: the stored utterances' sentiment, which metrics and flags read


@functools.cache  # the code does not change under a running process; a night asks up to five times
def rules_code_hash() -> str:
    """The code that tagged and scored the stored calls, as recorded in meta (`rules_code`)."""
    digest, here = hashlib.sha256(), Path(__file__).parent
    for path in [here / name for name in RULES_CODE] + [here.parent / "models" / name for name in MODEL_CODE]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def code_changed(store) -> bool:
    """Stored calls tagged and scored by other code than this release's (a store of an earlier release has no
    `rules_code`: it is judged as other code, once)."""
    return bool(store.manifest()["calls"]) and store.meta().get("rules_code") != rules_code_hash()


def pages_changed(store) -> str | None:
    """Why the stored pages are to be drawn again, as the night's note says it, or None. They were drawn by other
    page code than this release's, or no night that finished recorded which (an older release's store, or a night
    that stopped first): once. A page's fingerprint spares rendering it again only when its call is chosen for
    the night: without this, a fix or a new part of the page would reach only the calls stored or re-scored after
    the upgrade."""
    drawn_by = store.meta().get("pages_code")
    if not store.manifest()["calls"] or drawn_by == page_code():
        return None
    if drawn_by:
        return "as this release draws them"
    return "as no night that finished recorded how they were drawn (an older release, or a night that stopped)"


def calls_per_day(store) -> dict[date, int]:
    """Stored calls per call_date."""
    counts = store.read("calls", ["call_date"]).column("call_date").value_counts().to_pylist()
    return {c["values"]: c["counts"] for c in counts}


def retag(writer, tag_calls, spread: Spread | None = None, progress: bool | None = None, force: bool = False) -> bool:
    """signals/ changed since the stored calls were tagged, or (force) their text did: re-tag them all from stored
    text, no ASR (tag_calls: tag.tag_calls, or the flow's task of it; with `spread`, groups are tagged there with
    tag.tag_calls)."""
    store, library = writer.store, writer.tagger.library
    before, new_code = store.meta().get("signals_hash"), code_changed(store)
    if before == library.hash and not force and not new_code:
        return False
    calls_a_day = calls_per_day(store)
    groups, spread = _grouped(calls_a_day, spread)
    stored = (_stored_text(store, days) for days in groups)
    if spread is None:
        done = (tag_rows(writer.tagger, rows, tag_calls) for rows in stored)
    else:
        done = spread.run(retag_anywhere, stored, writer.run.run_id, library.hash)
    for n, days, (hits, categories) in as_done(groups, done, calls_a_day, "re-tagging stored calls", progress):
        # the new hash only with the last group; scorecards are stale from the first until re-scored
        last = {} if n == len(groups) else {"signals_hash": before}
        writer.commit({"signal_hits": hits, "call_categories": categories},
                      remove={name: store.parts_of(name, days) for name in ("signal_hits", "call_categories")},
                      meta={**last, "rescore_due": True})
    if not groups:
        return False
    retagged = sum(calls_a_day.values())
    writer.run.counts["retagged"] = retagged
    why = (f"signals changed (now {library.hash})" if before != library.hash else "stored text redacted again"
           if force else "this release tags and scores with other code")
    writer.run.notes.append(f"{why}: re-tagged {retagged} stored calls")
    return True


def _grouped(calls_a_day: dict[date, int], spread: Spread | None) -> tuple[list[set[date]], Spread | None]:
    """The archive's days in groups, and where to send them (None: this process)."""
    calls = sum(calls_a_day.values())
    if spread is None or not spread.worth_it(calls):
        return day_groups(calls_a_day, ARCHIVE_CALLS), None
    return day_groups(calls_a_day, spread.group_calls(calls)), spread


def as_done(groups: list[set[date]], done: Iterator, calls_a_day: dict[date, int], desc: str,
             progress: bool | None) -> Iterator[tuple[int, set[date], tuple]]:
    """(n, days, result) of each group in turn, with the calls done shown (progress.bar)."""
    with bar(sum(calls_a_day.values()), "call", desc, progress) as shown:
        for n, (days, result) in enumerate(zip(groups, done), 1):
            yield n, days, result
            shown.update(sum(calls_a_day[day] for day in days))


def _stored_text(store, days: set[date]) -> dict:
    return {"utterances": store.read("utterances", UTTERANCE_COLUMNS + ["end_s", "words"], days=days),
            "calls": store.read("calls", ["call_id", "duration_s"], days=days)}


def tag_rows(tagger, rows: dict, tag_calls) -> tuple[list[dict], list[dict]]:
    """The stored text of some days tagged: (signal_hits, call_categories), each hit at the time its words were said,
    as when the call was first tagged."""
    calls, turns = rows["calls"].to_pylist(), rows["utterances"]
    return tag_calls(tagger, turns.drop_columns(["words"]).to_pylist(), {c["call_id"]: c["duration_s"] for c in calls},
                     WordStarts(turns.column("words")))


class WordStarts:
    """The start times of each stored turn's words, by the turn's row, made Python values only for the turns a
    signal fires in (a dict per word of every turn would cost more than the tagging)."""

    def __init__(self, words: pa.ChunkedArray):
        words = words.combine_chunks()
        self.offsets = words.offsets.to_numpy()
        self.starts = pc.struct_field(words.values, "start_s").to_numpy(zero_copy_only=False)

    def __getitem__(self, row: int):
        return self.starts[self.offsets[row]:self.offsets[row + 1]]


def rescore(writer, retagged: bool, score_calls=qa.assess, spread: Spread | None = None,
            progress: bool | None = None) -> None:
    """Rubrics, flag rules or signals changed: re-score every stored call from stored tables, no ASR.

    Scorecards of rubric versions no longer configured are kept. Calls stored without metrics (by an
    older release) get them now. With `spread`, the groups are scored there (score_calls is then qa.assess).
    """
    store, rules, run = writer.store, writer.rules, writer.run
    meta = store.meta()
    if not store.manifest()["calls"]:
        if meta.get("rules_code") != rules_code_hash():  # a new store: what it will hold is this code's
            writer.commit({}, meta={"rules_code": rules_code_hash()})
        return
    new_code = code_changed(store)  # metrics too are computed again: this code may measure them otherwise
    due = retagged or meta.get("rescore_due") or meta.get("qa_hash") != rules.hash or new_code
    if not due and (meta.get("metrics_complete") or not _calls_without_metrics(store)):
        return  # the usual night: nothing to re-score, and no need to read the archive to know it
    calls_a_day = calls_per_day(store)
    groups, spread = _grouped(calls_a_day, spread)
    scored_before, counted = _scored(store, rules), run.counts["rescored"]
    replaced = SCORED + (("call_metrics", "utterances") if new_code else ())
    stored = (_stored_rows(store, days, new_code) for days in groups)
    if spread is None:
        done = (rescore_rows(rules, writer.tagger.library, run.run_id, rows, score_calls) for rows in stored)
    else:
        done = spread.run(rescore_anywhere, stored, run.run_id, rules.hash)
    for n, days, (tables, new) in as_done(groups, done, calls_a_day, "re-scoring stored calls", progress):
        # the code's hash only with the last group: a run killed before it does the whole archive again
        last = {"rules_code": rules_code_hash()} if n == len(groups) else {}
        writer.commit(tables, remove={name: store.parts_of(name, days) for name in replaced},
                      meta={"rescore_due": n < len(groups), **last})
        writer.count_scored("rescored", new, _call_days(store, days))
    rescored = run.counts["rescored"] - counted  # calls with a scorecard now, as the summary counts them
    run.notes.append(f"this release measures and scores with other code: re-scored {rescored} stored calls and "
                     "computed their metrics again" if new_code else
                     f"rubrics/flags (now {rules.hash}) or signals changed: re-scored {rescored} stored calls")
    run.notes += _unscored_notes(scored_before.join(_scored(store, rules), ["rubric_id", "rubric_version", "call_id"],
                                                    join_type="left anti"))


def _scored(store, rules) -> pa.Table:
    """(rubric_id, rubric_version, call_id) of the stored scorecards of the rubric versions configured now."""
    key = ["rubric_id", "rubric_version"]
    cards = store.read("scorecards", key + ["call_id"])
    configured = pa.Table.from_pylist([{"rubric_id": r.id, "rubric_version": r.version} for r in rules.rubrics],
                                      schema=cards.select(key).schema)
    return cards.join(configured, key, join_type="left semi")


def _unscored_notes(lost: pa.Table) -> list[str]:
    """A note for each configured rubric version whose scorecards of some calls a re-score replaced by none: another
    rubric claims those calls now (a rubric for their queue was added), and their old results are gone."""
    counts = lost.group_by(["rubric_id", "rubric_version"]).aggregate([("call_id", "count")]).to_pylist()
    return [f"rubric {c['rubric_id']} v{c['rubric_version']} no longer scores {c['call_id_count']} stored calls (a "
            f"rubric for their queue or direction claims them): their {c['rubric_id']} v{c['rubric_version']} "
            "scorecards were removed; give a rubric a new version before such a change to keep its old results"
            for c in sorted(counts, key=lambda c: (c["rubric_id"], c["rubric_version"]))]


def record_rubrics(writer) -> None:
    """Bring the `rubrics` table up to the configured rubrics (after re-scoring: it decides which scorecards
    are current). Tiny, so rewritten whole when anything in it changes; not even read on a night whose rules
    it was brought up to already."""
    store, rules = writer.store, writer.rules
    if store.meta().get("rubrics_recorded") == rules.hash:
        return
    stored = store.read("rubrics")
    rows, notes = qa.rubric_rows(rules, stored.to_pylist(), writer.run.run_id)
    changed = not conform("rubrics", rows).equals(stored)
    writer.commit({"rubrics": rows} if changed else {}, remove={"rubrics": store.manifest()["rubrics"]} if changed
                  else None, meta={"rubrics_recorded": rules.hash})
    writer.run.notes += notes


def _call_days(store, days: set[date]) -> dict[str, date]:
    calls = store.read("calls", ["call_id", "call_date"], days=days)
    return dict(zip(calls.column("call_id").to_pylist(), calls.column("call_date").to_pylist()))


def _calls_without_metrics(store) -> bool:
    calls = set(store.read("calls", ["call_id"]).column("call_id").to_pylist())
    return bool(calls - set(store.read("call_metrics", ["call_id"]).column("call_id").to_pylist()))


def _stored_rows(store, days: set[date], new_metrics: bool = False) -> dict:
    """What re-scoring the calls of these days reads, as Arrow tables (cheap to read, and to send).

    new_metrics: the stored metrics are not read, so every call's are computed again; nor is the stored
    sentiment: it is scored again (this release's model may score otherwise) and the utterances are written back
    with it, every column read for that. VADER's own scores of the text also give the metrics a new call of this
    text gets (from the stored float32 ones, sentiment_start and _end could differ by 0.001 where they round)."""
    rows = {"calls": store.read("calls", CALL_COLUMNS, days=days),
            "call_metrics": store.read("call_metrics", days=set() if new_metrics else days)}
    missing = set(rows["calls"].column("call_id").to_pylist()) - set(rows["call_metrics"].column("call_id").to_pylist())
    words = ["words"] if missing else []  # word times only matter for metrics not stored yet
    if new_metrics:
        rows["utterances"] = store.read("utterances", days=days).drop_columns(["sentiment"])
    else:
        rows["utterances"] = store.read("utterances", UTTERANCE_COLUMNS + ["end_s", "sentiment"] + words, days=days)
    for name in ("signal_hits", "call_categories", *SCORED):
        rows[name] = store.read(name, days=days)
    return rows


def rescore_rows(rules, library, run_id: str, rows: dict, score_calls=qa.assess) -> tuple[dict, dict]:
    """The stored rows of some days re-scored: (tables to commit in place of theirs, the new scores)."""
    calls, metrics = rows["calls"].to_pylist(), rows["call_metrics"].to_pylist()
    missing = {c["call_id"] for c in calls} - {m["call_id"] for m in metrics}
    utterances = sorted(rows["utterances"].to_pylist(), key=lambda u: (u["call_id"], u["utt_idx"]))
    # scored again when the stored sentiment was not read (see _stored_rows), and then written back
    scored_again = "sentiment" not in rows["utterances"].column_names
    utterances = qa.add_sentiment(utterances)
    added = qa.call_metrics([c for c in calls if c["call_id"] in missing],
                            [u for u in utterances if u["call_id"] in missing])
    new = score_calls(rules, library, calls, utterances, rows["signal_hits"].to_pylist(),
                      rows["call_categories"].to_pylist(), run_id, metrics=metrics + added)
    old = {name: rows[name].to_pylist() for name in SCORED}
    tables = qa.rescored(rules, old["scorecards"], old["scorecard_items"], old["flags"], new)
    again = {"utterances": conform("utterances", utterances)} if scored_again else {}
    return {**tables, "call_metrics": added, **again}, new


@dataclass
class Spread:
    """Where re-tagging and re-scoring run besides this process: `workers` local processes, or a Dask cluster
    (`client`, a distributed.Client). Either loads the signals and rules from `signals` itself, once a run."""
    signals: Path
    workers: int = 1
    client: object | None = None

    def worth_it(self, calls: int) -> bool:
        return self.client is not None or (self.workers > 1 and calls >= SPREAD_FROM)

    def group_calls(self, calls: int) -> int:
        """Calls a group: 4 groups a worker, so they finish together; never more than ARCHIVE_CALLS."""
        workers = self.workers if self.client is None else sum(self.client.nthreads().values()) or 1
        return max(1, min(ARCHIVE_CALLS, math.ceil(calls / (4 * workers))))

    def run(self, work, stored: Iterator[dict], run_id: str, expected: str) -> Iterator[tuple]:
        """work(signals, run_id, rows) of each group's stored rows, in order, less the hash of the signals or
        rules it loaded: it must be `expected`, what this process loaded."""
        items = ((self.signals, run_id, rows) for rows in stored)
        if self.client is not None:
            submit = functools.partial(self.client.submit, work, pure=False)
            yield from _checked(parallel.in_order(submit, items, parallel.CLUSTER_IN_FLIGHT), expected)
            return
        with parallel.process_pool(self.workers) as pool:
            yield from _checked(parallel.in_order(functools.partial(pool.submit, work), items, 2 * self.workers),
                                expected)


def _checked(results: Iterator[tuple], expected: str) -> Iterator[tuple]:
    for loaded, *result in results:
        if loaded != expected:
            raise RuntimeError("signals/ changed during the run; run again to re-tag and re-score with them")
        yield tuple(result)


# What a worker loads for a run, once (a Dask worker may serve many runs: the newest is kept).
@functools.lru_cache(maxsize=1)
def _library(signals: Path, run_id: str):
    return load_signals(signals)


@functools.lru_cache(maxsize=1)
def _rules(signals: Path, run_id: str):
    return load_qa(signals, _library(signals, run_id))


@functools.lru_cache(maxsize=1)
def _tagger(signals: Path, run_id: str):
    from pipeline import tag  # spaCy: only where tagging is done

    return tag.Tagger(_library(signals, run_id))


def rescore_anywhere(signals: Path, run_id: str, rows: dict) -> tuple[str, dict, dict]:
    """rescore_rows() in a worker process or on a Dask worker: (the rules' hash, tables as Arrow, the new
    scores as the writer counts them)."""
    rules, library = _rules(signals, run_id), _library(signals, run_id)
    with parallel.few_collections():
        tables, new = rescore_rows(rules, library, run_id, rows)
        tables = {name: conform(name, table) for name, table in tables.items()}
    counted = {"scorecards": [{"call_id": c["call_id"], "call_date": c["call_date"]} for c in new["scorecards"]],
               "flags": [{"call_id": f["call_id"]} for f in new["flags"]]}
    return rules.hash, tables, counted


def retag_anywhere(signals: Path, run_id: str, rows: dict) -> tuple[str, object, object]:
    """tag_rows() in a worker process or on a Dask worker: (the signal library's hash, hits, categories)."""
    from pipeline import tag

    tagger = _tagger(signals, run_id)
    with parallel.few_collections():
        hits, categories = tag_rows(tagger, rows, tag.tag_calls)
        return tagger.library.hash, conform("signal_hits", hits), conform("call_categories", categories)
