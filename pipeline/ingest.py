"""Find what is new: recordings (with their metadata, see metadata.py) and ready-made transcripts.

Pure planning: reads the input folders and the ids already stored, returns the
calls to process plus one-line failures. Nothing here writes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat as stat_mode
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable

import av
import pandas as pd

from pipeline.centre_time import local_time
from pipeline.listing import Listing, Settled, list_files
from pipeline.audio_header import mp3_cut, mp4_shortfall, ogg_unended, wav_shortfall, wav_size_unknown
from pipeline.ingest_notes import forgotten_note, same_audio_stored, stored_elsewhere_note, stored_note

AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wma", ".webm", ".amr"}
# A file modified in the last SETTLE_S seconds is looked at again RECHECK_S later: one that changed meanwhile is
# still being written (a copy in progress, a call still being recorded) and is left for the next run.
SETTLE_S, RECHECK_S = 60.0, 1.0
# A WAV whose header gives no size is a streaming recorder's until it has not changed for this long (the
# default of callintel.yaml's unsized_wav_settle_minutes): a call on hold writes nothing for minutes.
UNSIZED_SETTLE_S = 600.0


@dataclass
class CallJob:
    """One recording to transcribe, with everything known about it before decoding."""
    call_id: str
    source_path: str          # relative to the input folder
    path: Path
    audio_sha256: str
    file_size: int
    file_mtime: float
    started_at: datetime
    channels: int
    sample_rate: int
    duration_s: float
    agent_channel: str        # left | right | mono
    agent_id: str | None = None
    queue: str | None = None
    direction: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def call_date(self) -> date:
        return self.started_at.date()


@dataclass
class Plan:
    jobs: list[CallJob]
    found: int
    skipped: int
    failures: list[dict]
    notes: list[str]


def failure(source_path: str, stage: str, error: str) -> dict:
    return {"source_path": source_path, "stage": stage, "error": " ".join(str(error).split())}


class Resolver:
    """Path.resolve() of many files in few folders: each folder is resolved once and each file only lstat-ed, where
    resolve() walks every component of every path (a no-op night over 10,000 recordings paid 20,000 such walks)."""

    def __init__(self):
        self._folders: dict[Path, Path] = {}

    def __call__(self, path: Path) -> Path:
        if path.name in ("", ".", ".."):
            return path.resolve()
        if (folder := self._folders.get(path.parent)) is None:
            folder = self._folders[path.parent] = path.parent.resolve()
        real = folder / path.name
        try:
            is_link = stat_mode.S_ISLNK(os.lstat(real).st_mode)
        except OSError:  # missing: resolve() gives the resolved folder and the name, as here
            return real
        return real.resolve() if is_link else real


def discover(folder: Path, settled: Settled | None = None, out: Path | None = None) -> Listing:
    """Audio files under folder, recursively, in a stable order; hidden files ignored; settled folders that have
    not changed are not listed, nor the output folder out (pipeline/listing.py)."""
    if not folder.is_dir():
        return Listing([])
    return list_files(folder, lambda name: os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS, settled,
                      hidden=False, out=out)


def still_written(files: list[Path], unsized_settle_s: float = UNSIZED_SETTLE_S,
                  stored: Callable[[Path, os.stat_result], bool] = lambda path, stat: False) -> dict[Path, str]:
    """Those of these files still being written, each with the note that says so: modified in the last SETTLE_S
    seconds and again within RECHECK_S, or a WAV whose header gives no size modified in the last unsized_settle_s.

    A WAV cut short betrays itself (probe: its header declares more), an mp3 or ogg does not: half a copy
    decodes as a shorter call, and once stored short the whole file would be skipped, or stored twice. A WAV
    a streaming recorder is still writing hides it the same way: its RIFF and data sizes stay 0 or 0xFFFFFFFF
    until the call ends. Once unchanged for unsized_settle_s it is taken as it is, its length from the audio it
    holds: some recorders never fix the header. stored: whether a file is a stored call's, unchanged (its header
    is not read again: after a night of a few thousand calls, the next run would open them all).
    """
    now, recent, writing = time.time(), {}, {}
    wait = f"{unsized_settle_s / 60:g} min"
    for path in files:
        with contextlib.suppress(OSError):  # unreadable or gone: the plan reports it
            age = now - (stat := path.stat()).st_mtime
            if age < SETTLE_S:
                recent[path] = (stat.st_size, stat.st_mtime_ns)
            if age < unsized_settle_s and not stored(path, stat) and wav_size_unknown(path):
                writing[path] = (f"still being written (its WAV header gives no length yet and it changed in the "
                                 f"last {wait}); retried next run, and taken once it has not changed for {wait}")
    if not recent:
        return writing
    time.sleep(RECHECK_S)
    for path, was in recent.items():
        with contextlib.suppress(OSError):
            if ((stat := path.stat()).st_size, stat.st_mtime_ns) != was:
                writing[path] = f"still being written (it changed within {RECHECK_S:g} s); taken on a later run"
    return writing


def name_failure(rel: str) -> dict | None:
    """A failure row when a file's name is not UTF-8 (a Latin-1 "café.wav" copied from another system), else None.
    Python keeps such bytes as lone surrogates, which no table can store: the name is shown with them escaped."""
    try:
        rel.encode("utf-8")
        return None
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return failure(shown, "ingest", f"{shown}: the file name is not UTF-8 text; rename the file "
                                        "(e.g. convmv -f latin1 -t utf8)")


def call_id_problem(call_id: str) -> str | None:
    """Why an id from metadata or a transcript cannot be a call_id, or None.

    The id names files (the HTML scorecard is <out>/scorecards/<date>/<call_id>.html), so an input must not
    be able to steer a write outside the output folder with "../" or a path separator.
    """
    if len(call_id) > 128:
        return "is longer than 128 characters"
    if "/" in call_id or "\\" in call_id or call_id.startswith(".") or not call_id.isprintable():
        return "must not contain / or \\ or control characters, nor start with '.' (it names files)"
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def call_digest(call_id: str) -> str:
    """How a forgotten call is remembered: enough to refuse it again, not enough to say which it was."""
    return hashlib.sha256(f"callintel-forgotten:{call_id}".encode()).hexdigest()


def audio_digest(audio_sha256: str) -> str:
    """How a forgotten call's recording is remembered: the same audio is refused again under any call id (its
    metadata row arriving later, a CRM id given afterwards), as it is under its own."""
    return hashlib.sha256(f"callintel-forgotten-audio:{audio_sha256}".encode()).hexdigest()


def probe(path: Path) -> tuple[int, int, float]:
    """(channels, sample_rate, duration_s) from the container, or ValueError with a readable reason."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError("empty file (0 bytes)")
    if cut := wav_shortfall(path, size):
        # FFmpeg reads a truncated WAV happily (its duration comes from the bytes present), so it would be stored
        # as a short call. Refuse it instead: a recorder that died, or a copy still being written, looks like
        # this, and once a partial call is stored the complete file is never taken (same metadata call_id) or
        # is stored a second time (new audio hash). A failure is retried every run until the file is whole.
        declared, held = cut
        raise ValueError(f"truncated WAV: the header declares {declared:.1f} s of audio but the file ends after "
                         f"{held:.1f} s (cut short, or still being written); not stored until it is complete")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise ValueError("no audio stream in the file")
            stream = container.streams.audio[0]
            _refuse_cut(container.format.name, path, size)
            duration = (float(stream.duration * stream.time_base) if stream.duration
                        else (container.duration or 0) / 1e6)
            return stream.codec_context.channels, stream.codec_context.sample_rate or stream.rate, duration
    except av.FFmpegError as exc:
        _refuse_cut("mp4", path, size)  # an M4A cut before its index (written last) does not open at all
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"cannot decode audio: {reason}; not a recording, or a damaged one") from None


def _refuse_cut(formats: str, path: Path, size: int) -> None:
    """ValueError if a file of these FFmpeg formats ("mov,mp4,m4a,...") says it was cut short."""
    formats, problem = set(formats.split(",")), None
    if "ogg" in formats and ogg_unended(path, size):
        problem = "Ogg: the file ends without its stream's last page"
    elif "mp3" in formats and (frame := mp3_cut(path, size)) is not None:
        problem = f"MP3: the file ends inside a frame that starts at byte {frame}"
    elif "mp4" in formats and (box := mp4_shortfall(path, size)):
        problem = f"MP4/M4A: its '{box[0]}' box runs {box[1]} bytes past the end of the file"
    if problem:
        raise ValueError(f"truncated {problem} (cut short, or still being written); not stored until it is complete")


def stored_at(known: pd.DataFrame, rels: list[str]) -> pd.DataFrame:
    """The stored calls (rows of `known`) at these paths: a night looks up the files it lists, not every stored
    call (a set of the whole archive's files cost ~1 s a night per million calls)."""
    rels = [rel for rel in rels if name_failure(rel) is None]  # not UTF-8: never stored, and no Arrow string
    return known[known["source_path"].isin(rels)] if rels else known.iloc[:0]


class StoredAt:
    """What transcripts.new_files looks stored files up with: the stored calls at the paths its listing found,
    looked up once and kept (`rows`), since the files it leaves to read are among them."""

    def __init__(self, known: pd.DataFrame):
        self.known, self.rows = known, known.iloc[:0]

    def __call__(self, rels: list[str]) -> set[tuple[str, int, float]]:
        self.rows = stored_at(self.known, rels)
        return stored_files(self.rows)


def stored_files(known: pd.DataFrame) -> set[tuple[str, int, float]]:
    """(source_path, file_size, file_mtime) of stored calls: a file still matching one is not read again.
    Calls stored without file times (transcripts from before they were kept) match no file."""
    files = known.dropna(subset=["file_size", "file_mtime"])
    # every stored call, every night: lists, since iterating an Arrow-backed column costs 4x as much
    return set(zip(files["source_path"].tolist(), files["file_size"].astype(int).tolist(),
                   files["file_mtime"].tolist()))


def plan_recordings(folder: Path, known: pd.DataFrame, default_agent_channel: str,
                    since: date | None = None, exclude_ids: set[str] = frozenset(),
                    forgotten: set[str] = frozenset(), unsized_settle_s: float = UNSIZED_SETTLE_S,
                    zone: str | None = None, names=None, settled: Settled | None = None,
                    known_ids: set[str] | None = None, out: Path | None = None,
                    stored_audio: Callable[[list[str]], dict[str, str]] | None = None) -> Plan:
    """Which recordings are new. `known` has call_id, source_path, file_size, file_mtime of stored calls;
    `forgotten` holds digests of calls deleted on request, which are never stored again; a WAV whose header
    gives no size is left until it has not changed for unsized_settle_s (see still_written); zone: the centre's,
    in which a call's start is read (see centre_time); names: what recordings' names say (file_names.FileNames);
    settled: the folders found settled last night, not listed again (pipeline/listing.py), updated; known_ids:
    every stored call_id, if the caller has them already; out: the output folder, never read as input;
    stored_audio: audio_sha256 -> call_id of the stored calls with any of the given digests (see same_audio_stored)."""
    from pipeline.file_names import describe  # here: both build on this module's failure rows
    from pipeline.metadata import read_metadata
    listing = discover(folder, settled, out)
    known_ids = set(known["call_id"].tolist()) if known_ids is None else known_ids

    def gone(call_id: str, rel: str) -> bool:  # only asked of rows whose recording is missing: rare
        if call_id:
            return call_id in known_ids or call_digest(call_id) in forgotten
        return bool((known["source_path"] == rel).any())

    metadata = read_metadata(folder, zone, listing.kept, gone)
    failures = list(metadata.failures)
    here = stored_at(known, [rel for _, rel, _ in listing.files])  # the stored calls at the files listed
    known_files = stored_files(here)
    stored_as = dict(zip(here["source_path"].tolist(), here["call_id"].tolist()))
    jobs, skipped, notes, ids, heard, stored = [], 0, [], {}, {}, set()
    copies: list[tuple[CallJob, str]] = []  # (a job, the file listed before it with the same audio)
    root, resolve = folder.resolve(), metadata.resolve
    files = [Path(path) for path, _, _ in listing.files]
    writing = still_written(files, unsized_settle_s, lambda path, stat: (
        path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime) in known_files)
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if bad_name := name_failure(rel):
            failures.append(bad_name)
            continue
        resolved = resolve(path)
        if not resolved.is_relative_to(root):
            # A symlink is followed only inside the folder we were given; never read what it points at.
            failures.append(failure(rel, "ingest", f"{rel}: a symbolic link to a file outside the input folder; "
                                                   "not read"))
            continue
        if path in writing:  # set aside until it is whole: counted with the files not new tonight
            skipped += 1
            notes.append(f"{rel}: {writing[path]}")
            continue
        unnamed, meta = describe(names, rel, metadata.rows.get(resolved, {}), zone)
        try:
            stat = path.stat()
            unchanged = (rel, stat.st_size, stat.st_mtime) in known_files
            # without a metadata id, a stored path is the same call: new bytes there are not a second call
            if meta.get("call_id") in known_ids or unchanged or (rel in stored_as and not meta.get("call_id")):
                skipped += 1
                if unchanged:
                    stored.add(rel)
                elif rel not in stored_as:  # its call came earlier from another file: said once, then settled
                    stored.add(rel)
                    notes.append(stored_elsewhere_note(rel, meta["call_id"], known))
                notes += stored_note(rel, meta, stored_as, unchanged)
                continue
            if metadata.holds(resolved):
                continue  # its metadata file or row was refused: already a failure that names the file and line
            if waits := metadata.misnamed(resolved, rel):
                failures.append(failure(rel, "ingest", waits))
                continue
            if unnamed:  # its id is in a name that cannot be read: stored without it, it would be stored twice
                failures.append(failure(rel, "ingest", unnamed))
                continue
            job = _job(path, rel, stat, meta, default_agent_channel, zone)
        except ValueError as exc:
            failures.append(failure(rel, "ingest", f"{rel}: {exc}"))
            continue
        except OSError as exc:  # unreadable, or moved away since it was listed: this file only, not the batch
            failures.append(failure(rel, "ingest", f"{rel}: cannot read the file ({exc.strerror or exc})"))
            continue
        if job.call_id in known_ids or (since and job.call_date < since):
            skipped += 1
        elif forgotten and (call_digest(job.call_id) in forgotten or audio_digest(job.audio_sha256) in forgotten):
            skipped += 1
            notes.append(forgotten_note(rel))
        elif job.call_id in exclude_ids:
            skipped += 1
            notes.append(f"{rel}: call {job.call_id} also came as a transcript; the transcript was used")
        elif job.audio_sha256 in heard:  # a copy, under any id: one call, whatever the metadata says
            copies.append((job, heard[job.audio_sha256]))
        elif job.call_id in ids:
            failures.append(failure(rel, "ingest",
                                    f"{rel}: same call_id {job.call_id} as {ids[job.call_id]}; not stored twice"))
        else:
            ids[job.call_id], heard[job.audio_sha256] = rel, rel
            jobs.append(job)
            if job.channels < 2 and meta.get("agent_channel") in ("left", "right"):
                notes.append(f"{rel}: one channel, though its metadata gives the agent the {meta['agent_channel']} "
                             "one; transcribed as mono, every turn's speaker unknown (agent_channel: mono says so)")
            if job.channels > 2:  # a conference bridge's or a surround file: said, not silently cut
                notes.append(f"{rel}: {job.channels} channels; the first two are transcribed (agent and customer, "
                             "as channels.agent says), the others are not")
    if stored_audio is not None:
        # copies of a call stored on an earlier night are that call, however many came in this one: not failures
        new_audio, earlier, said = same_audio_stored(jobs + [job for job, _ in copies], stored_audio)
        skipped, notes = skipped + len(earlier), notes + said
        stored |= {job.source_path for job in earlier}  # said once, then settled like any stored file
        unheard = {job.audio_sha256 for job in new_audio}
        jobs = [job for job in jobs if job.audio_sha256 in unheard]
        copies = [(job, first) for job, first in copies if job.audio_sha256 in unheard]
    failures += [failure(job.source_path, "ingest", f"{job.source_path}: the same recording (byte for byte) as "
                                                    f"{first}; not stored twice") for job, first in copies]
    if settled is not None:  # a folder whose metadata describes files elsewhere must be read while they may come
        settled.settle({rel: leaf for rel, leaf in listing.leaves.items() if root / rel not in metadata.reaches_out},
                       stored)
    return Plan(jobs, len(files) + listing.unchanged, skipped + listing.unchanged, failures, notes)


def _job(path: Path, rel: str, stat, meta: dict, default_agent_channel: str, zone: str | None) -> CallJob:
    channels, rate, duration = probe(path)
    digest = sha256(path)
    # a mono file has no side to be the agent's, whatever its metadata says: stored as what was transcribed
    channel = "mono" if channels < 2 else meta.get("agent_channel") or default_agent_channel
    return CallJob(
        call_id=meta.get("call_id") or digest[:16], source_path=rel, path=path, audio_sha256=digest,
        file_size=stat.st_size, file_mtime=stat.st_mtime,
        started_at=meta.get("started_at") or local_time(stat.st_mtime, zone).replace(microsecond=0),
        channels=channels, sample_rate=rate, duration_s=duration, agent_channel=channel,
        agent_id=meta.get("agent_id"), queue=meta.get("queue"), direction=meta.get("direction"),
        extra=meta.get("extra", {}),
    )


def call_row(job: CallJob, **fields) -> dict:
    """The `calls` row of a job; fields fill what only later stages know."""
    row = {k: getattr(job, k) for k in (
        "call_id", "source_path", "audio_sha256", "file_size", "file_mtime", "started_at", "channels",
        "sample_rate", "duration_s", "agent_channel", "agent_id", "queue", "direction")}
    row.update(call_date=job.call_date, extra=json.dumps(job.extra, sort_keys=True) if job.extra else None)
    row.update(fields)
    return row
