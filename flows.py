"""Prefect flows and the deployment. The only module that imports Prefect.

Thin on purpose: read -> stage -> write. Stages are plain functions in pipeline/;
the Store does all file I/O; this module only wires them and schedules the run.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import os

# No network here: Prefect's telemetry would log an error on every run.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from prefect import flow, serve, task, unmapped  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.context import FlowRunContext  # noqa: E402
from prefect.schedules import Cron  # noqa: E402
from prefect.context import refresh_global_settings_context  # noqa: E402
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, get_current_settings  # noqa: E402
from prefect.utilities.annotations import quote  # noqa: E402

from pipeline import archive, audio_redact, batch, discover, ingest, parallel, qa, scorecard, tag  # noqa: E402
from pipeline import ingest_notes, listing, prefect_server, transcribe, transcripts  # noqa: E402
from pipeline.config import Config, input_problem, load_config, set_at, with_overrides  # noqa: E402
from pipeline.discover import load_topic_model  # noqa: E402
from pipeline.file_names import FileNames  # noqa: E402
from pipeline.progress import bar  # noqa: E402
from pipeline.redact_archive import reredact  # noqa: E402
from pipeline.rubric import QaConfig, load_qa  # noqa: E402
from pipeline.runs import Run, close_failed, close_interrupted, store_summary, transcript_rows  # noqa: E402
from pipeline.signals import load_signals  # noqa: E402
from pipeline.store import Store  # noqa: E402
from pipeline.transcribe import AsrOptions, Transcriber  # noqa: E402
from pipeline.views import VIEWS  # noqa: E402
from pipeline.writer import Writer  # noqa: E402

# Prefect waits 20 s for its temporary API server; a loaded 2-core machine has needed more (see run_nightly).
EPHEMERAL_STARTUP_TIMEOUT_S = 120


class _Whole:
    """A task called with its arguments quoted: Prefect then passes them as they are instead of walking them.

    Prefect visits every element of a task's arguments, looking for futures to wait on and record as inputs.
    A stage's arguments are whole tables already in memory, so that walk finds nothing and costs ~10 us a
    row: re-scoring an archive of 200,000 utterances spent 38 of its 45 s in it.
    """

    def __init__(self, stage):
        self.task, self.fn = stage, stage.fn

    def __call__(self, *args, **kwargs):
        return self.task(*map(quote, args), **{key: quote(value) for key, value in kwargs.items()})


# Tasks wrap the pure stages; inputs are large in-memory tables, so no result caching.
plan_recordings = task(ingest.plan_recordings, name="ingest", cache_policy=NO_CACHE)
list_transcripts = task(transcripts.new_files, name="list-transcripts", cache_policy=NO_CACHE)
tag_calls = _Whole(task(tag.tag_calls, name="tag", cache_policy=NO_CACHE))
enrich = _Whole(task(qa.add_sentiment, name="enrich", cache_policy=NO_CACHE))
assign_topics = _Whole(task(discover.assign, name="discover", cache_policy=NO_CACHE))
fit_topics = task(discover.fit, name="discover-refit", cache_policy=NO_CACHE)
render_pages = _Whole(task(scorecard.ready_pages, name="render-pages", cache_policy=NO_CACHE))
score_calls = _Whole(task(qa.assess, name="score", cache_policy=NO_CACHE))
redact_calls = _Whole(task(batch.redact_calls, name="redact", cache_policy=NO_CACHE))
redact_recordings = _Whole(task(audio_redact.redact_recordings, name="redact-audio", cache_policy=NO_CACHE))
transcribe_call = task(transcribe.transcribe_job, name="transcribe-call", cache_policy=NO_CACHE)
prepare_batch = task(batch.prepare_anywhere, name="prepare-batch", cache_policy=NO_CACHE)


@task(name="transcribe", cache_policy=NO_CACHE)
def transcribe_batch(transcriber: Transcriber, jobs: list) -> list:
    return list(transcriber.run(jobs))


@flow(name="nightly", log_prints=True)
def nightly(config: str | None = None, input: str | None = None, transcripts_dir: str | None = None,
            out: str | None = None, signals: str | None = None, since: date | None = None,
            workers: int | None = None, progress: bool | None = None, wait_s: float = 0) -> dict:
    """One nightly run: new recordings and transcripts in, Parquet + DuckDB out; returns the run summary."""
    cfg = with_overrides(load_config(config), input=input, transcripts=transcripts_dir, out=out,
                         signals=signals, workers=workers)
    library = load_signals(cfg.signals)
    tagger, rules = tag.Tagger(library), load_qa(cfg.signals, library)
    store = Store(cfg.out)
    with store.lock(wait_s):
        close_interrupted(store)
        run = Run(cfg.hash(), library.hash, rules.hash)
        store.write_summary(run.summary())
        writer = _writer(store, run, tagger, rules, cfg)
        try:
            return _night(cfg, store, run, writer, since, progress)
        except Exception as exc:
            with contextlib.suppress(Exception):  # pages of a stored batch: a page not written is the next night's
                writer.pages_written()
            close_failed(store, run, exc)
            raise
        except KeyboardInterrupt:  # Ctrl-C: stopped at once; the next run marks this one interrupted
            with contextlib.suppress(Exception):
                writer.pages_written()
            raise


def _night(cfg: Config, store: Store, run: Run, writer: Writer, since, progress: bool | None) -> dict:
    """The night's steps, in order, under the lock."""
    if problem := input_problem(cfg):  # a failed night a scheduler sees, not an "ok" one that read nothing
        raise FileNotFoundError(problem)
    writer.topic_model = load_topic_model(store, run)
    # judged before the night stores anything: a new store's first calls have no pages_code until the night ends
    redraw = archive.pages_changed(store)
    with run.step("re-tag and re-score"):  # after the stored text is redacted again, if the rules changed
        again = reredact(writer, cfg.redaction.entities, progress)
        _rescore_archive(cfg, writer, _retag_archive(cfg, writer, progress, force=again), progress)
        archive.record_rubrics(writer)
    known = store.read("calls", ["call_id", "source_path", "file_size", "file_mtime", "asr_model"]).to_pandas()
    known_ids = set(known["call_id"].tolist())  # tolist: 4x faster than iterating an Arrow-backed column
    with run.step("transcripts"):
        imported = _import_transcripts(cfg, writer, known, known_ids, since, progress)
    with run.step("recordings"):
        writer.settled["recordings"] = settled = listing.Settled(cfg.input, _settled_record(store, "recordings"))
        plan = plan_recordings(cfg.input, known, cfg.channels.agent, since, exclude_ids=_transcript_ids(cfg, known) | imported,
                               forgotten=store.forgotten(), unsized_settle_s=cfg.unsized_wav_settle_minutes * 60,
                               zone=cfg.schedule.timezone, names=FileNames.of(cfg), settled=settled,
                               known_ids=known_ids, out=cfg.out, stored_audio=store.calls_with_audio)
        run.counts["found"] += plan.found
        run.counts["skipped"] += plan.skipped
        run.notes += plan.notes + ingest_notes.unread_notes(cfg.input, cfg.transcripts, run.counts["found"],
                                                            "input" in cfg.overridden or bool(set_at(cfg, "input")))
        run.add_failures(plan.failures)
        _transcribe(cfg, writer, plan.jobs, progress)
    if run.counts["transcribed"] + run.counts["imported"]:  # said where a served night's owner reads
        run.notes += qa.unmatched_scopes(writer.rules, store)
    with run.step("topics"):
        _discover_topics(cfg, writer)
    with run.step("scorecard pages"):
        pages_pending = not _write_pages(cfg, writer, redraw, progress)
    with run.step("compact and publish"):
        store.compact(run.run_id)
        run.finish()
        # a page left unwritten keeps the old pages_code, so the next night draws them all again
        pages = {"pages_pending": True} if pages_pending else {"pages_pending": False,
                                                                "pages_code": scorecard.page_code()}
        settled = {listing.META_KEY: {name: s.record() for name, s in writer.settled.items()}}
        store.commit(run.run_id, 0, {"runs": [run.row()], "failures": run.failures}, meta=pages | settled)
        store.publish(VIEWS)
    summary = store_summary(store, run)
    # the line a scheduler's log keeps (a served night has no terminal to print the CLI's summary on)
    print(f"night {run.run_id}: {summary['status']}; {run.counts['transcribed']} transcribed, "
          f"{run.counts['imported']} imported, {run.counts['failed']} failed"
          + (f" (SELECT * FROM failures WHERE run_id = '{run.run_id}')" if run.counts["failed"] else ""))
    return summary


def _writer(store: Store, run: Run, tagger: tag.Tagger, rules: QaConfig, cfg: Config) -> Writer:
    """The flow's writer, its stages this module's tasks (looked up now: a benchmark swaps them for timers)."""
    stages = batch.Stages(redact_calls, enrich, tag_calls, score_calls, assign_topics, render_pages)
    return Writer(store, run, tagger, rules, cfg, stages, redact_recordings)


# The stored archive brought up to date when the rules change (pipeline/archive.py), with this flow's tasks.
def _retag_archive(cfg: Config, writer: Writer, progress: bool | None = None, force: bool = False) -> bool:
    return archive.retag(writer, tag_calls, _spread(cfg), progress, force)


def _rescore_archive(cfg: Config, writer: Writer, retagged: bool, progress: bool | None = None) -> None:
    archive.rescore(writer, retagged, score_calls, _spread(cfg), progress)


def _spread(cfg: Config) -> archive.Spread:
    """Where the archive is re-tagged and re-scored: on the flow's Dask cluster, or in local processes."""
    if (cluster := _cluster(cfg)) is not None:
        return archive.Spread(cfg.signals, client=cluster)
    return archive.Spread(cfg.signals, workers=cfg.workers())


def _cluster(cfg: Config):
    """The flow's Dask cluster (its distributed.Client, from the DaskTaskRunner), or None on the local runner."""
    return FlowRunContext.get().task_runner.client if cfg.runner.kind == "dask" else None


def _discover_topics(cfg: Config, writer: Writer) -> None:
    discover.update(writer, cfg.topics, fit_topics)


@task(name="scorecard-pages", cache_policy=NO_CACHE)
def _write_pages(cfg: Config, writer: Writer, redraw: str | None, progress: bool | None = None) -> bool:
    """HTML scorecards of the calls scored in this run, plus any a killed run did not get to write; with redraw
    (why, from archive.pages_changed: the stored pages were drawn otherwise) every stored call's, once.

    A page that cannot be rendered or written is a failure of that call's page only; its data is already
    stored. On Dask they are rendered on the flow's cluster. Returns whether every page is written.
    """
    store = writer.store
    writer.pages_written()
    # every stored call's when redrawing (tonight's and those a killed run left among them), read once
    calls = store.calls_with_day() if redraw else writer.pages | (
        store.calls_without_page() if writer.pages_left else {})
    pages = scorecard.write_stored(store, calls, cfg.input, cfg.workers(), progress, _cluster(cfg))
    if redraw:
        writer.run.notes.append(f"scorecard pages drawn again, {redraw}: {pages.written} changed, "
                                f"{pages.unchanged} the same")
    elif pages.unchanged:
        writer.run.notes.append(f"scorecard pages: {pages.written} written, {pages.unchanged} already up to date")
    writer.run.add_failures([ingest.failure(call["source_path"], "scorecard-page",
                                            f"HTML scorecard not written ({why})") for call, why in pages.failed])
    return not pages.failed


def _settled_record(store: Store, name: str) -> dict | None:
    """The folders of an input folder last night found settled (pipeline/listing.py)."""
    return (store.meta().get(listing.META_KEY) or {}).get(name)


def _transcript_ids(cfg: Config, known: pd.DataFrame) -> set[str]:
    """Ids of the calls stored from transcripts (a recording of one is not transcribed too), if recordings come."""
    if not cfg.input.is_dir():
        return set()
    return set(known.loc[known["asr_model"] == "transcript", "call_id"].tolist())


def _import_transcripts(cfg: Config, writer: Writer, known: pd.DataFrame, known_ids: set[str], since,
                        progress: bool | None) -> set[str]:
    """Store the night's new transcripts; returns their call ids (so their recordings are not transcribed too)."""
    if not cfg.transcripts:
        return set()
    run = writer.run
    writer.settled["transcripts"] = settled = listing.Settled(cfg.transcripts,
                                                              _settled_record(writer.store, "transcripts"))
    files, found, skipped, failures = list_transcripts(cfg.transcripts, listed := ingest.StoredAt(known), settled,
                                                       cfg.out)
    writer.stored = known  # to say where a call a transcript repeats was stored from
    here = listed.rows  # the stored calls at the paths listed, among them those of the files to read
    work, stored, unreadable, notes = transcripts.recheck(files, set(here["source_path"].tolist()), known_ids,
                                                          {rel for rel, _, _ in ingest.stored_files(here)},
                                                          writer.reading)
    run.counts["found"] += found
    run.counts["skipped"] += skipped + stored
    run.add_failures(failures + unreadable)
    run.notes += notes
    return store_imported(cfg, writer, work, progress, known_ids, since, writer.store.forgotten())


def store_imported(cfg: Config, writer: Writer, work: list, progress: bool | None, known_ids: set[str] = frozenset(),
                   since=None, forgotten: set[str] = frozenset()) -> set[str]:
    """Read and store transcripts on every core, import_commit_every calls per commit; returns the ids stored.

    work: (path, rel) transcript files, or calls loaded already (each with .call and .utterances). Workers read
    and prepare WORK_CALLS at a time (so a few thousand calls still keep every core busy, and the JSON is parsed
    on every core too); this process admits the new calls in file order and commits them, merged into commits of
    import_commit_every calls, since every commit writes a file per table and day.
    """
    chunks = list(batch.chunks(work, min(cfg.import_commit_every, batch.WORK_CALLS)))
    batches = ((chunk, since, forgotten) for chunk in chunks)
    # One batch is not worth starting processes for; on Dask the cluster, not this machine, has the cores.
    workers = min(cfg.workers(), len(chunks))
    model_path = writer.store.model_path() if writer.topic_model is not None else None  # the file it loaded
    setup = (cfg.signals, list(cfg.redaction.entities), model_path, cfg.topics, writer.run.run_id,
             writer.reading)
    seen: dict[str, str] = {}  # call_id -> file, of the calls admitted this night
    stored: set[str] = set()
    with bar(len(work), "file", "importing transcripts", progress) as done, contextlib.ExitStack() as stack, \
            parallel.few_collections():
        if cfg.runner.kind == "dask":
            # one task per batch on the cluster; each worker builds the run's context once
            prepared = parallel.in_order(functools.partial(prepare_batch.submit, setup), batches,
                                         parallel.CLUSTER_IN_FLIGHT)
        elif workers > 1:
            pool = batch.Pool(workers, *setup, pages_to=writer.store.incoming_pages)
            prepared = stack.enter_context(pool).map(batches)
        else:
            prepared = itertools.starmap(writer.prepare_transcripts, batches)
        # admitted batch by batch, before merging: a call_id is unique within one worker's batch only
        admitted = (writer.admit(ready, known_ids, seen) for ready in _progress(prepared, done))
        for group in batch.gather(admitted, cfg.import_commit_every):
            calls = writer.store_batch(group)
            writer.run.counts["imported"] += len(calls)
            stored.update(c["call_id"] for c in calls)
    writer.pages_written()  # the last batch's, from the folder the next line empties
    writer.store.remove_staged_pages()  # of calls refused after their pages were staged
    return stored


def _progress(prepared, done):
    for ready in prepared:
        done.update(ready.files)
        yield ready


def _transcribe(cfg: Config, writer: Writer, jobs: list, progress: bool | None) -> None:
    """Transcribe and store the night's recordings, commit_every calls at a time.

    Locally a process pool of 1-thread workers (measured fastest on one machine); on Dask one task per
    call, spread over the cluster's workers, each keeping the model loaded.
    """
    if not jobs:
        return
    opts = AsrOptions.from_config(cfg.asr)
    if cfg.runner.kind == "dask":
        for chunk in batch.chunks(jobs, cfg.commit_every):
            results = [f.result() for f in transcribe_call.map(unmapped(opts), chunk)]
            _store_transcripts(writer, chunk, results, opts.model)
        return
    with Transcriber(opts, workers=min(cfg.workers(), 2 * len(jobs)), progress=progress) as transcriber:
        transcriber.start_progress(jobs)
        for chunk in batch.chunks(jobs, cfg.commit_every):
            _store_transcripts(writer, chunk, transcribe_batch(transcriber, chunk), opts.model)


def _store_transcripts(writer: Writer, jobs: list, results: list, model: str) -> None:
    run, by_id = writer.run, {job.call_id: job for job in jobs}
    calls, utterances, failures = [], [], []
    for result in results:
        job = by_id[result.call_id]
        if result.error:
            failures.append(ingest.failure(job.source_path, "transcribe", result.error))
            continue
        call, rows = transcript_rows(job, result, run.run_id, model)
        calls.append(call)
        utterances += rows
    stored = writer.calls(calls, utterances)
    run.add_failures(failures)
    run.counts["transcribed"] += len(stored)
    run.audio_s = round(run.audio_s + sum(c["duration_s"] or 0.0 for c in stored), 3)


def task_runner(cfg: Config):
    """Prefect's default runner locally; with `runner: {kind: dask}` a DaskTaskRunner on the given scheduler
    (or, without an address, a local Dask cluster of one 1-thread worker per core)."""
    if cfg.runner.kind != "dask":
        return None
    from prefect_dask import DaskTaskRunner

    if cfg.runner.address:
        return DaskTaskRunner(address=cfg.runner.address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers(), "threads_per_worker": 1})


def run_nightly(config: str | None = None, **params) -> dict:
    """The nightly flow once, on the task runner the configuration asks for."""
    runner = task_runner(with_overrides(load_config(config), workers=params.get("workers")))
    if not PREFECT_API_URL.value() and PREFECT_SERVER_EPHEMERAL_ENABLED.value():  # as Prefect's get_client()
        from prefect.server.api import server as api_server

        prefect_server.guard_temporary_server()  # so the temporary server it is about to start ends with us
        prefect_server.in_own_session(api_server)  # and a Ctrl-C stops the run, not the server it reports through
        _give_the_temporary_server_time()
    return (nightly.with_options(task_runner=runner) if runner else nightly)(config=config, **params)


def _give_the_temporary_server_time() -> None:
    """Prefect waits 20 s for its temporary server to answer, then stops the run before it stored anything; on
    a loaded 2-core machine its start-up takes longer, 1 run in 3. A user's own setting (environment, profile,
    prefect.toml) is kept.

    Set in the environment and Prefect's root settings re-read, not with temporary_settings(): the server is
    started from whichever thread first needs the API, and only the root settings reach every thread."""
    if "startup_timeout_seconds" in get_current_settings().server.ephemeral.model_fields_set:
        return
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = str(EPHEMERAL_STARTUP_TIMEOUT_S)
    refresh_global_settings_context()


def api_url() -> str | None:
    """The configured Prefect server's API (None: a run starts a temporary one, which has no scheduler, so a
    deployment served on it would never run)."""
    return PREFECT_API_URL.value() or None


def deployment(cfg: Config, config_path: str | None):
    """The nightly deployment: the same flow on the configured cron, in the configured (or local) zone.

    One run at a time: a night still running when the next is due makes the next wait its turn (queued)
    rather than fail on the store's lock."""
    import tzlocal

    zone = cfg.schedule.timezone or tzlocal.get_localzone_name()
    params = {"config": str(Path(config_path).resolve())} if config_path else {}
    return served_flow(cfg).to_deployment(name="nightly", schedules=[Cron(cfg.schedule.cron, timezone=zone)],
                                          parameters=params, description="callintel nightly run", concurrency_limit=1)


def served_flow(cfg: Config):
    """The nightly flow as `serve` runs it: on the configured runner, and tried again after an error stopped it."""
    runner = task_runner(cfg)
    return nightly.with_options(retries=cfg.schedule.retries, retry_delay_seconds=cfg.schedule.retry_delay_minutes * 60,
                                **({"task_runner": runner} if runner else {}))


def serve_nightly(config_path: str | None) -> None:
    serve(deployment(load_config(config_path), config_path))
