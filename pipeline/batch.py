"""The text stages of one batch of calls, and a process pool that runs batches on every core.

redact -> sentiment -> tag -> score + flag -> topic assignment -> HTML scorecards (of imported transcripts),
for whole calls: everything a commit stores except the calls' audio, and the pages written after it.
`prepare` takes the stage functions as arguments so the flow can pass its Prefect tasks (one task run per
stage and batch) and a pool worker the plain functions; both run the same code. Stages are deterministic,
so a batch prepared in a worker equals one prepared in-process.
"""
from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import discover, qa, redact, scorecard, store_pages, tag, transcripts
from pipeline.redact_meta import redact_extras
from pipeline.config import TopicsConfig
from pipeline.parallel import GC_THRESHOLD, few_collections, in_order, process_pool
from pipeline.rubric import QaConfig, load_qa
from pipeline.schemas import conform
from pipeline.signals import load_signals


def redact_calls(utterances: list[dict], entities: list[str]) -> tuple[list[dict], dict[str, int], dict[str, str]]:
    """PII out of every utterance (and its words), call by call, before anything is written.

    Returns the clean utterances, how many spans were redacted in each call, and the calls that could not be
    redacted (call_id -> reason): those are not stored at all, rather than stored with their PII.
    """
    out, found, failed = [], {}, {}
    for call_id, turns in itertools.groupby(utterances, key=lambda u: u["call_id"]):
        try:
            clean, counts = redact.redact_utterances(list(turns), entities)
        except ValueError as exc:
            failed[call_id] = f"redaction failed, call not stored: {exc}"
            continue
        out += clean
        found[call_id] = sum(counts.values())
    return out, found, failed


# Calls a worker prepares at a time: small enough that a night of a few thousand calls keeps every core
# busy. Commits are larger (import_commit_every): prepared batches are merged before they are written.
WORK_CALLS = 500


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def rows(table: pa.Table | list[dict], columns: list[str]) -> list[dict]:
    """Rows of a table as dicts of the given columns (lists of dicts pass through)."""
    return table.select(columns).to_pylist() if isinstance(table, pa.Table) else table


@dataclass
class Stages:
    redact: Callable
    enrich: Callable
    tag: Callable
    score: Callable
    assign: Callable
    pages: Callable


PLAIN = Stages(redact_calls, qa.add_sentiment, tag.tag_calls, qa.assess, discover.assign, scorecard.ready_pages)


@dataclass
class Context:
    """What every batch of a run is prepared with."""
    tagger: tag.Tagger
    rules: QaConfig
    entities: list[str]
    topic_model: object | None
    topic_options: TopicsConfig
    run_id: str
    reading: transcripts.Reading = transcripts.Reading()  # the centre's zone and names for the sides
    pages_to: Path | None = None  # a store's scorecards/.incoming: stage pages there (a pool worker), not return them


@dataclass
class Batch:
    """A prepared batch: the calls to store (those that could be redacted) and their rows per table (Arrow).

    A batch of transcript files also says what was read, in file order, for `transcripts.admit` to decide
    which calls are new: reading runs wherever the batch is prepared, but only the committing process
    knows the calls stored and those earlier batches admitted.
    """
    calls: list[dict]
    tables: dict[str, object]
    redacted: dict[str, int]  # call_id -> PII spans taken out
    failed: dict[str, str] = field(default_factory=dict)  # source_path -> why the call is not stored
    signals_hash: str = ""
    loaded: list[tuple[str, str]] = field(default_factory=list)  # (call_id, source_path) of every call read
    skipped: int = 0                                             # files read and not wanted (see transcripts.read)
    unreadable: list[dict] = field(default_factory=list)        # failure rows of files that could not be read
    files: int = 0                                               # work items the batch was made from
    # call_id -> HTML scorecard, or the file it is staged in (Context.pages_to), to put in place once stored
    pages: dict[str, bytes | Path] = field(default_factory=dict)
    # sentence vectors of the turns assigned to topics (topic_vectors.keyed pieces), kept for the next fit
    vectors: list[tuple] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the run should say of files read and not wanted

    def without(self, call_ids: set[str]) -> Batch:
        """The batch less these calls (refused by the committing process), in every table. Only for a batch as
        prepared, not merged: its rows are told apart by call_id, which is unique in one batch only."""
        if not call_ids:
            return self
        drop = pa.array(sorted(call_ids), pa.string())
        tables = {name: table.filter(pc.invert(pc.is_in(table.column("call_id"), value_set=drop)))
                  for name, table in self.tables.items()}
        return dataclasses.replace(self, calls=[c for c in self.calls if c["call_id"] not in call_ids], tables=tables,
                                   redacted={k: n for k, n in self.redacted.items() if k not in call_ids},
                                   pages={k: html for k, html in self.pages.items() if k not in call_ids})


def prepare(stages: Stages, ctx: Context, calls: list[dict], utterances: list[dict]) -> Batch:
    utterances, found, failed = stages.redact(utterances, ctx.entities)
    unstored = {c["source_path"]: failed[c["call_id"]] for c in calls if c["call_id"] in failed}
    calls, in_extra = redact_extras([c for c in calls if c["call_id"] not in failed], ctx.entities)
    found = {k: found.get(k, 0) + in_extra.get(k, 0) for k in found.keys() | in_extra.keys()}
    utterances = stages.enrich(utterances)
    durations = {c["call_id"]: c["duration_s"] or 0.0 for c in calls}
    hits, categories = stages.tag(ctx.tagger, utterances, durations)
    scored = stages.score(ctx.rules, ctx.tagger.library, calls, utterances, hits, categories, ctx.run_id)
    topics, vectors = stages.assign(ctx.topic_model, utterances, hits, ctx.topic_options)
    tables = {"calls": calls, "utterances": utterances, "signal_hits": hits, "call_categories": categories,
              "utterance_topics": topics, **scored}
    # Arrow here, not in the committing process: it is the one process every batch waits for, and Arrow
    # tables cross from a worker far cheaper than lists of dicts. Pages too: rendering is most of their cost.
    tables = {name: conform(name, rows) for name, rows in tables.items()}
    return Batch(calls, tables, found, unstored, ctx.tagger.library.hash, pages=_pages(stages, ctx, tables),
                 vectors=[vectors] if vectors is not None else [])


def _pages(stages: Stages, ctx: Context, tables: dict) -> dict[str, bytes | Path]:
    pages = stages.pages(tables)
    if ctx.pages_to is None:
        return pages
    # Written here, so a page's bytes never cross to the committing process. One not staged is left out: the
    # flow's pages step renders it again from the store and reports why it fails.
    staged, _ = store_pages.stage_pages(ctx.pages_to, pages.items())
    return staged


def prepare_transcripts(stages: Stages, ctx: Context, work: list, since=None,
                        forgotten: set[str] = frozenset()) -> Batch:
    """prepare() of a batch of transcripts: (path, rel) files read here, or calls loaded already.

    Only the first call of each call_id in the batch is prepared; `loaded` lists them all, for admit().
    """
    read, skipped, unreadable, notes = transcripts.read(work, since, forgotten, ctx.reading)
    first = {}
    for item in read:
        first.setdefault(item.call["call_id"], item)
    calls = [{**item.call, "run_id": ctx.run_id} for item in first.values()]
    prepared = prepare(stages, ctx, calls, [u for item in first.values() for u in item.utterances])
    prepared.loaded = [(item.call["call_id"], item.call["source_path"]) for item in read]
    prepared.skipped, prepared.unreadable, prepared.files, prepared.notes = skipped, unreadable, len(work), notes
    return prepared


def admit(prepared: Batch, known_ids: set[str], seen: dict[str, str]
          ) -> tuple[Batch, list[tuple[str, str]], list[dict]]:
    """The batch less the calls that are not new (`transcripts.admit`): (batch, (call_id, file) of the calls
    stored already, failures).

    Run in the committing process, batch after batch in file order, so the answer is the one reading every
    file in one process would give.
    """
    kept, known, duplicates = transcripts.admit(prepared.loaded, known_ids, seen)
    refused = {c["call_id"] for c in prepared.calls if kept.get(c["call_id"]) != c["source_path"]}
    admitted = set(kept.values())
    unstored = {path: why for path, why in prepared.failed.items() if path in admitted}
    return dataclasses.replace(prepared.without(refused), failed=unstored), known, duplicates


def merge(batches: list[Batch]) -> Batch:
    """Consecutive prepared batches as one: their calls, and their rows per table, in order."""
    if len(batches) == 1:
        return batches[0]
    tables = {}
    for name in batches[0].tables:
        parts = [b.tables[name] for b in batches if len(b.tables[name])]
        tables[name] = pa.concat_tables(parts) if parts else batches[0].tables[name]  # empty, with its schema
    # a batch tagged with another library than the first must still be refused when it is stored
    hashes = {b.signals_hash for b in batches}
    return Batch([c for b in batches for c in b.calls], tables, {k: n for b in batches for k, n in b.redacted.items()},
                 {path: why for b in batches for path, why in b.failed.items()},
                 batches[0].signals_hash if len(hashes) == 1 else "mixed", [x for b in batches for x in b.loaded],
                 sum(b.skipped for b in batches), [f for b in batches for f in b.unreadable],
                 sum(b.files for b in batches), {k: html for b in batches for k, html in b.pages.items()},
                 [piece for b in batches for piece in b.vectors], [note for b in batches for note in b.notes])


def gather(batches: Iterable[Batch], calls: int) -> Iterator[Batch]:
    """Batches merged into ones of at least `calls` calls (stored or refused); the last may hold fewer."""
    group, held = [], 0
    for prepared in batches:
        group.append(prepared)
        held += len(prepared.calls) + len(prepared.failed)
        if held >= calls:
            yield merge(group)
            group, held = [], 0
    if group:
        yield merge(group)


# ---- worker side: the run's context, built once per process ----
_CONTEXT: Context | None = None
_SETUP: tuple | None = None  # what _CONTEXT was built from


def _context(signals: Path, entities: list[str], model_path: Path | None, options: TopicsConfig,
             run_id: str, reading: transcripts.Reading) -> Context:
    from models import topics

    library = load_signals(signals)
    model = topics.TopicModel.load(model_path) if model_path else None
    return Context(tag.Tagger(library), load_qa(signals, library), list(entities), model, options, run_id, reading)


def _init_worker(pages_to: Path | None, *setup) -> None:
    global _CONTEXT
    from threadpoolctl import threadpool_limits

    from models import embedding

    # The pool has a process per core: threads inside each (BLAS, onnxruntime) would only fight over them.
    threadpool_limits(1)
    embedding.THREADS = 1
    _CONTEXT = dataclasses.replace(_context(*setup), pages_to=pages_to)
    gc.freeze()  # the worker lives for one run: what it loaded stays, and is never walked again
    gc.set_threshold(*GC_THRESHOLD)
    # ...until it exits: frozen objects outlive the interpreter's last collection, and DuckDB (imported with
    # the parent's main module) prints a wall of "nanobind: leaked" lines for every one of its objects left.
    atexit.register(gc.unfreeze)


def _prepare_in_worker(work: list, since, forgotten: set[str]) -> Batch:
    return prepare_transcripts(PLAIN, _CONTEXT, work, since, forgotten)


def prepare_anywhere(setup: tuple, work: list, since, forgotten: set[str]) -> Batch:
    """prepare_transcripts() in a process that may serve many runs (a Dask worker): the context is built from
    `setup` (signals folder, entities, model file, topic options, run id, reading) once per process and run."""
    global _CONTEXT, _SETUP
    from models import embedding

    if _SETUP != setup:
        _CONTEXT, _SETUP = _context(*setup), setup
    embedding.THREADS = 1  # a Dask worker runs a task per thread it has: each embeds on its own one
    with few_collections():
        return prepare_transcripts(PLAIN, _CONTEXT, work, since, forgotten)


class Pool:
    """Prepares batches in `workers` processes, results in submission order.

    The model file is read by each worker (it is committed and never changes during a run); the
    signals folder too, and every batch carries the hash it was tagged with so the caller can refuse
    a batch tagged with a library edited mid-run. Workers stage their pages in `pages_to` (a store's
    scorecards/.incoming), for the committing process to put in place once their calls are stored.
    """

    def __init__(self, workers: int, signals: Path, entities: list[str], model_path: Path | None,
                 options: TopicsConfig, run_id: str, reading: transcripts.Reading, pages_to: Path | None = None):
        self._pool = process_pool(workers, _init_worker, (pages_to, signals, list(entities), model_path, options,
                                                          run_id, reading))
        self.workers = workers

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(cancel_futures=True)

    def map(self, batches: Iterable[tuple]) -> Iterator[Batch]:
        """Prepared batches of transcripts, (work, since, forgotten) each, in order, keeping at most 2 per worker
        in flight to bound memory."""
        return in_order(functools.partial(self._pool.submit, _prepare_in_worker), batches, 2 * self.workers)
