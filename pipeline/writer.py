"""The nightly run's writer: prepared calls committed whole, with their counts, notes and pages.

Kept apart from flows.py, which wires stages into Prefect: the writer only needs to be told how each stage
runs, so a benchmark or a tool can drive it with plain functions.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Callable

from pipeline import archive, audio_redact, batch, ingest, listing, tag, transcripts
from pipeline.config import Config
from pipeline.rubric import QaConfig
from pipeline.runs import Run
from pipeline.schemas import conform
from pipeline.store import Store


class Writer:
    """Commits whole calls: the call, its utterances and its tags land together or not at all.

    stages: how each stage runs (the flow passes its Prefect tasks; batch.PLAIN runs them as plain functions);
    redact_recordings: how redacted copies of recordings are written, when the configuration asks for them.
    """

    def __init__(self, store: Store, run: Run, tagger: tag.Tagger, rules: QaConfig, cfg: Config,
                 stages: batch.Stages = batch.PLAIN, redact_recordings: Callable = audio_redact.redact_recordings):
        self.stages, self.redact_recordings = stages, redact_recordings
        self.store, self.run, self.tagger, self.rules, self.seq = store, run, tagger, rules, 1
        self.entities, self.topic_options = cfg.redaction.entities, cfg.topics
        self.reading = transcripts.Reading.of(cfg)  # the centre's zone and names for the sides
        self.audio_from = cfg.input if cfg.redaction.audio else None  # recordings folder, when copies are wanted
        self.topic_model = None  # the current topic model: new calls' turns are assigned to it as they are stored
        self.stored = None  # stored calls (call_id, source_path, asr_model) when transcripts are imported
        self.assigned: list = []  # and their sentence vectors (embedding topics), kept for the next fit
        self.topics_assigned: list = []  # the topic_id and weight of each turn assigned, to judge the model by
        self.pages: dict[str, date] = {}  # calls (and their days) whose HTML scorecard must be (re)written
        # an earlier run stored scorecards and may not have written their pages (killed, or a page failed)
        self.pages_left = store.meta().get("pages_pending", True)
        self.writing: Future | None = None  # the pages of the batch stored last, being written (write_pages)
        # input folders' settled folders (pipeline/listing.py), as this night's listing found them: kept at its end
        self.settled: dict[str, listing.Settled] = {}

    def calls(self, calls: list[dict], utterances: list[dict]) -> list[dict]:
        """Redact, tag, score and commit whole calls in this process; returns the calls stored."""
        return self.store_batch(self.prepare(calls, utterances))

    def prepare(self, calls: list[dict], utterances: list[dict]) -> batch.Batch:
        """Redact, tag and score whole calls in this process, one Prefect task run per stage."""
        return batch.prepare(*self._stages(), calls, utterances)

    def prepare_transcripts(self, work: list, since, forgotten: set[str]) -> batch.Batch:
        """Read (when given files) and prepare a batch of transcripts in this process."""
        return batch.prepare_transcripts(*self._stages(), work, since, forgotten)

    def _stages(self) -> tuple[batch.Stages, batch.Context]:
        return self.stages, batch.Context(self.tagger, self.rules, self.entities, self.topic_model,
                                          self.topic_options, self.run.run_id, reading=self.reading)

    def admit(self, prepared: batch.Batch, known_ids: set[str], seen: dict[str, str]) -> batch.Batch:
        """The new calls of a batch of transcripts; what was not new or not readable is counted and reported."""
        admitted, known, duplicates = batch.admit(prepared, known_ids, seen)
        self.run.counts["skipped"] += prepared.skipped + len(known)
        self.run.add_failures(prepared.unreadable + duplicates)
        self.run.notes += prepared.notes + (not_used_notes(known, self.stored) if known else [])
        return admitted

    def store_batch(self, prepared: batch.Batch) -> list[dict]:
        """Commit a prepared batch (its calls, their rows in every table, together); returns the calls stored."""
        if prepared.signals_hash != self.tagger.library.hash:
            raise RuntimeError("signals/ changed during the run; run again to re-tag with the new library")
        self.run.counts["redacted"] += sum(prepared.redacted.values())
        self.run.add_failures([ingest.failure(path, "redact", why) for path, why in prepared.failed.items()])
        calls, tables = prepared.calls, prepared.tables
        if self.audio_from is not None:
            self.run.add_failures(self.redact_recordings(self.store, self.audio_from, calls,
                                                         tables["utterances"].to_pylist()))
        days = [c["call_date"].isoformat() for c in calls] + [self.store.meta().get("newest_day", "")]
        self.commit(tables, meta={"newest_day": max(days)})
        self.run.counts["utterances"] += len(tables["utterances"])
        self.assigned += prepared.vectors
        self.topics_assigned.append(conform("utterance_topics", tables["utterance_topics"]).select(
            ["topic_id", "weight"]))
        self.run.counts["tagged"] += len(calls)
        self.count_scored("scored", tables, {c["call_id"]: c["call_date"] for c in calls})
        self.write_pages(calls, prepared.pages)
        return calls

    def write_pages(self, calls: list[dict], pages: dict[str, bytes | Path]) -> None:
        """Write the pages rendered with a batch, now that its calls are stored. A page not written is left to
        the scorecard-pages step, which renders it again from the store and reports why it fails.

        A thread writes them while the next batch is prepared: making a file is the kernel's work (0.1-0.5 ms
        on ext4, most of a page's cost) and frees the interpreter. One batch at a time, so at most one batch's
        pages wait in memory; `pages_written` waits for them.
        """
        self.pages_written()
        todo = [(call, pages[call["call_id"]]) for call in calls if call["call_id"] in pages]
        if todo:
            pool = ThreadPoolExecutor(1, thread_name_prefix="callintel-pages")
            self.writing = pool.submit(self._write_pages, todo)
            pool.shutdown(wait=False)  # its one thread ends with its one task

    def _write_pages(self, todo: list[tuple[dict, bytes | Path]]) -> list[str]:
        failed = self.store.write_pages(todo)
        return [call["call_id"] for call, _ in todo if call["call_id"] not in failed]

    def pages_written(self) -> None:
        """Wait for the pages being written: before the night reads which are left, and before the store's lock
        is let go (the thread writes under it)."""
        if self.writing is not None:
            writing, self.writing = self.writing, None
            for call_id in writing.result():
                self.pages.pop(call_id, None)

    def count_scored(self, key: str, scored: dict, calls: dict[str, date]) -> None:
        """Count the calls scored and flagged, and queue the pages of `calls` (id -> day), scored or not: a page
        shows a call's flags and signals too, so a call no rubric scores still has one to keep current."""
        self.run.counts[key] += len({c["call_id"] for c in batch.rows(scored["scorecards"], ["call_id"])})
        self.run.counts["flagged"] += len({f["call_id"] for f in batch.rows(scored["flags"], ["call_id"])})
        self.pages |= calls

    def commit(self, tables: dict, remove: dict | None = None, meta: dict | None = None) -> None:
        # Every commit of this release stores metrics with its calls; older stores were backfilled at the start.
        # pages_pending: calls or their scores committed whose pages may not be written yet (cleared when they are),
        # so a usual night need not look for every stored call's page to know none is missing.
        pending = {"pages_pending": True} if any(len(tables.get(t, [])) for t in ("calls", *archive.SCORED)) else {}
        self.store.commit(self.run.run_id, self.seq, tables, remove,
                          meta={"signals_hash": self.tagger.library.hash, "qa_hash": self.rules.hash,
                                "metrics_complete": True, **pending, **(meta or {})})
        self.seq += 1


def not_used_notes(known: list[tuple[str, str]], stored) -> list[str]:
    """What a night says of transcripts (call_id, file) of calls stored on an earlier night from another file: the
    recording, an earlier delivery, another file with the same call_id. A stored call is never stored twice nor
    replaced, and a corrected transcript under a new name went unused without a word. stored: the stored calls'
    call_id, source_path and asr_model (a DataFrame), looked up only for these."""
    rows = stored[stored["call_id"].isin([call_id for call_id, _ in known])] if stored is not None else None
    source = {} if rows is None else dict(zip(rows["call_id"], zip(rows["source_path"], rows["asr_model"])))
    notes = []
    for call_id, rel in known:
        path, model = source.get(call_id, (None, "transcript"))
        whence = f"its recording {path}" if model != "transcript" else path or "another file"
        notes.append(f"{rel}: call {call_id} was stored from {whence} on an earlier night; that call was kept and "
                     "this transcript not used")
    return notes
