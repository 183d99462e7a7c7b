"""Prefect flows and the deployment. The only module that imports Prefect.

Thin on purpose: read -> stage -> write. Stages are plain functions in pipeline/;
the Store does all file I/O; this module only wires them and schedules the run.
"""
from __future__ import annotations

import os

# No network here: Prefect's telemetry would log an error on every run.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from prefect import flow, serve, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.schedules import Cron  # noqa: E402

from pipeline import ingest, transcripts  # noqa: E402
from pipeline.config import Config, load_config, with_overrides  # noqa: E402
from pipeline.runs import Run, transcript_rows  # noqa: E402
from pipeline.store import Store  # noqa: E402
from pipeline.transcribe import AsrOptions, Transcriber  # noqa: E402

# Tasks wrap the pure stages; inputs are large in-memory tables, so no result caching.
plan_recordings = task(ingest.plan_recordings, name="ingest", cache_policy=NO_CACHE)
load_transcripts = task(transcripts.load_transcripts, name="import-transcripts", cache_policy=NO_CACHE)


@task(name="transcribe", cache_policy=NO_CACHE)
def transcribe_batch(transcriber: Transcriber, jobs: list) -> list:
    return list(transcriber.run(jobs))


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@flow(name="nightly", log_prints=True)
def nightly(config: str | None = None, input: str | None = None, transcripts_dir: str | None = None,
            out: str | None = None, signals: str | None = None, since: date | None = None,
            workers: int | None = None, progress: bool | None = None) -> dict:
    """One nightly run: new recordings and transcripts in, Parquet + DuckDB out; returns the run summary."""
    cfg = with_overrides(load_config(config), input=input, transcripts=transcripts_dir, out=out,
                         signals=signals, workers=workers)
    store = Store(cfg.out)
    with store.lock():
        _close_interrupted(store)
        run = Run(cfg.hash())
        store.write_summary(run.summary())
        known = store.read("calls", ["call_id", "source_path", "file_size", "file_mtime"]).to_pandas()
        seq = _import_transcripts(cfg, store, run, known, since)
        plan = plan_recordings(cfg.input, known, cfg.channels.agent, since, exclude_ids=_transcript_ids(store))
        run.counts["found"] += plan.found
        run.counts["skipped"] += plan.skipped
        run.notes += plan.notes
        run.add_failures(plan.failures)
        _transcribe(cfg, store, run, plan.jobs, seq, progress)
        run.finish()
        store.commit(run.run_id, 0, {"runs": [run.row()], "failures": run.failures})
        store.publish()
        return store_summary(store, run)


def _import_transcripts(cfg: Config, store: Store, run: Run, known: pd.DataFrame, since) -> int:
    if not cfg.transcripts:
        return 1
    calls, found, skipped, failures = load_transcripts(cfg.transcripts, set(known["call_id"]), since)
    run.counts["found"] += found
    run.counts["skipped"] += skipped
    run.add_failures(failures)
    seq = 1
    for chunk in _chunks(calls, cfg.commit_every):
        call_rows = [{**c.call, "run_id": run.run_id} for c in chunk]
        utterance_rows = [u for c in chunk for u in c.utterances]
        store.commit(run.run_id, seq, {"calls": call_rows, "utterances": utterance_rows})
        seq += 1
        run.counts["imported"] += len(chunk)
        run.counts["utterances"] += len(utterance_rows)
    return seq


def _transcript_ids(store: Store) -> set[str]:
    calls = store.read("calls", ["call_id", "asr_model"]).to_pandas()
    return set(calls.loc[calls["asr_model"] == "transcript", "call_id"])


def _transcribe(cfg: Config, store: Store, run: Run, jobs: list, seq: int, progress: bool | None) -> None:
    if not jobs:
        return
    opts = AsrOptions.from_config(cfg.asr)
    by_id = {job.call_id: job for job in jobs}
    with Transcriber(opts, workers=min(cfg.workers(), 2 * len(jobs)), progress=progress) as transcriber:
        transcriber.start_progress(jobs)
        for chunk in _chunks(jobs, cfg.commit_every):
            calls, utterances, failures = [], [], []
            for result in transcribe_batch(transcriber, chunk):
                job = by_id[result.call_id]
                if result.error:
                    failures.append(ingest.failure(job.source_path, "transcribe", result.error))
                    continue
                call, rows = transcript_rows(job, result, run.run_id, opts.model)
                calls.append(call)
                utterances += rows
            store.commit(run.run_id, seq, {"calls": calls, "utterances": utterances})
            seq += 1
            run.add_failures(failures)
            run.counts["transcribed"] += len(calls)
            run.counts["utterances"] += len(utterances)


def _close_interrupted(store: Store) -> None:
    for stale in store.stale_summaries():
        run = Run.interrupted(stale)
        store.commit(run.run_id, 99_999, {"runs": [run.row()]})
        store.write_summary(run.summary())


def store_summary(store: Store, run: Run) -> dict:
    path = store.write_summary(run.summary(database=str(store.db_path), out=str(store.out)))
    return run.summary(database=str(store.db_path), out=str(store.out), summary_path=str(path))


def deployment(cfg: Config, config_path: str | None):
    """The nightly deployment: the same flow on the configured cron, in the configured (or local) zone."""
    import tzlocal

    zone = cfg.schedule.timezone or tzlocal.get_localzone_name()
    params = {"config": str(Path(config_path).resolve())} if config_path else {}
    return nightly.to_deployment(name="nightly", schedules=[Cron(cfg.schedule.cron, timezone=zone)],
                                 parameters=params, description="callintel nightly run")


def serve_nightly(config_path: str | None) -> None:
    serve(deployment(load_config(config_path), config_path))
