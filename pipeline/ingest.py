"""Find what is new: recordings (with optional metadata.csv) and ready-made transcripts.

Pure planning: reads the input folders and the ids already stored, returns the
calls to process plus one-line failures. Nothing here writes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import av
import pandas as pd

AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wma", ".webm", ".amr"}
METADATA_COLUMNS = {"file", "call_id", "started_at", "agent_id", "queue", "direction", "agent_channel"}


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


def discover(folder: Path) -> list[Path]:
    """Audio files under folder, recursively, in a stable order; hidden files ignored."""
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def parse_timestamp(value: str) -> datetime:
    """ISO-8601 -> naive local time (contact centres reason in their own clock)."""
    ts = datetime.fromisoformat(value.strip())
    return ts.astimezone().replace(tzinfo=None) if ts.tzinfo else ts


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def call_digest(call_id: str) -> str:
    """How a forgotten call is remembered: enough to refuse it again, not enough to say which it was."""
    return hashlib.sha256(f"callintel-forgotten:{call_id}".encode()).hexdigest()


def probe(path: Path) -> tuple[int, int, float]:
    """(channels, sample_rate, duration_s) from the container, or ValueError with a readable reason."""
    if path.stat().st_size == 0:
        raise ValueError("empty file (0 bytes)")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise ValueError("no audio stream in the file")
            stream = container.streams.audio[0]
            duration = (float(stream.duration * stream.time_base) if stream.duration
                        else (container.duration or 0) / 1e6)
            return stream.codec_context.channels, stream.codec_context.sample_rate or stream.rate, duration
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"cannot decode audio: {reason}") from None


def read_metadata(folder: Path) -> tuple[dict[str, dict], list[dict]]:
    """metadata.csv/.parquet rows keyed by resolved file path; bad rows become failures."""
    for name in ("metadata.csv", "metadata.parquet"):
        path = folder / name
        if path.exists():
            break
    else:
        return {}, []
    try:
        frame = (pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix == ".csv"
                 else pd.read_parquet(path).astype(str))
    except Exception as exc:  # pandas raises many kinds for a broken file
        return {}, [failure(name, "ingest", f"{name}: unreadable ({exc})")]
    if "file" not in frame.columns:
        return {}, [failure(name, "ingest", f"{name}: no 'file' column; it names each recording")]
    rows, failures, seen_ids = {}, [], {}
    root = folder.resolve()
    for line, record in enumerate(frame.to_dict("records"), start=2):
        where = f"{name} line {line}"
        error, row = _metadata_row(record, root, where)
        if error:
            failures.append(failure(record.get("file", ""), "ingest", error))
            continue
        if row["call_id"] and row["call_id"] in seen_ids:
            failures.append(failure(record["file"], "ingest",
                                    f"{where}: duplicate call_id {row['call_id']!r} (first on line {seen_ids[row['call_id']]})"))
            continue
        if row["call_id"]:
            seen_ids[row["call_id"]] = line
        rows[row["path"]] = row
    return rows, failures


def _metadata_row(record: dict, root: Path, where: str) -> tuple[str | None, dict]:
    file = record["file"].strip()
    target = (root / file).resolve()
    if not file or Path(file).is_absolute() or not target.is_relative_to(root):
        return f"{where}: file {file!r} is outside the input folder", {}
    if not target.is_file():
        return f"{where}: file {file!r} not found", {}
    started = None
    if record.get("started_at", "").strip():
        try:
            started = parse_timestamp(record["started_at"])
        except ValueError:
            return f"{where}: started_at {record['started_at']!r} is not an ISO-8601 timestamp", {}
    channel = record.get("agent_channel", "").strip().lower() or None
    if channel not in (None, "left", "right", "mono"):
        return f"{where}: agent_channel {channel!r} must be left, right or mono", {}
    clean = lambda key: (record.get(key) or "").strip() or None  # noqa: E731
    extra = {k: v for k, v in record.items() if k not in METADATA_COLUMNS and v != ""}
    return None, {"path": target, "call_id": clean("call_id"), "started_at": started, "agent_channel": channel,
                  "agent_id": clean("agent_id"), "queue": clean("queue"), "direction": clean("direction"),
                  "extra": extra}


def plan_recordings(folder: Path, known: pd.DataFrame, default_agent_channel: str,
                    since: date | None = None, exclude_ids: set[str] = frozenset(),
                    forgotten: set[str] = frozenset()) -> Plan:
    """Which recordings are new. `known` has call_id, source_path, file_size, file_mtime of stored calls;
    `forgotten` holds digests of calls deleted on request, which are never stored again."""
    metadata, failures = read_metadata(folder)
    if failures and not metadata and failures[0]["source_path"].startswith("metadata."):
        # Without readable metadata the call ids would be wrong; process nothing until it is fixed.
        return Plan([], 0, 0, failures, [])
    known_ids = set(known["call_id"])
    known_files = set(zip(known["source_path"], known["file_size"], known["file_mtime"]))
    jobs, skipped, notes, ids = [], 0, [], {}
    files = discover(folder)
    for path in files:
        rel = path.relative_to(folder).as_posix()
        meta = metadata.get(path.resolve(), {})
        stat = path.stat()
        if meta.get("call_id") in known_ids or (rel, stat.st_size, stat.st_mtime) in known_files:
            skipped += 1
            continue
        try:
            job = _job(path, rel, stat, meta, default_agent_channel)
        except ValueError as exc:
            failures.append(failure(rel, "ingest", exc))
            continue
        if job.call_id in known_ids or (since and job.call_date < since):
            skipped += 1
        elif forgotten and call_digest(job.call_id) in forgotten:
            skipped += 1
            notes.append(f"{rel}: deleted on request (callintel forget); not stored again")
        elif job.call_id in exclude_ids:
            skipped += 1
            notes.append(f"{rel}: call {job.call_id} also came as a transcript; the transcript was used")
        elif job.call_id in ids:
            failures.append(failure(rel, "ingest", f"same call_id {job.call_id} as {ids[job.call_id]}; not stored twice"))
        else:
            ids[job.call_id] = rel
            jobs.append(job)
    return Plan(jobs, len(files), skipped, failures, notes)


def _job(path: Path, rel: str, stat, meta: dict, default_agent_channel: str) -> CallJob:
    channels, rate, duration = probe(path)
    digest = sha256(path)
    channel = meta.get("agent_channel") or (default_agent_channel if channels >= 2 else "mono")
    return CallJob(
        call_id=meta.get("call_id") or digest[:16], source_path=rel, path=path, audio_sha256=digest,
        file_size=stat.st_size, file_mtime=stat.st_mtime,
        started_at=meta.get("started_at") or datetime.fromtimestamp(stat.st_mtime).replace(microsecond=0),
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
