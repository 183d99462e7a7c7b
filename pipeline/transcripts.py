"""Ready-made transcripts (one JSON or CSV file per call) for centres with their own ASR.

Format (DESIGN.md, Inputs; CSV: pipeline/transcript_csv.py):
    {"call_id": "c-0001", "started_at": "2026-11-20T09:14:00", "agent_id": "a_ruiz",
     "queue": "billing", "direction": "inbound",
     "utterances": [{"speaker": "agent", "start_s": 0.4, "end_s": 3.1, "text": "Thank you for calling ..."}]}
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from pipeline.column_names import read_as
from pipeline.config_yaml import format_validation_error
from pipeline.centre_time import ISO_FORM, future_problem, parse_timestamp
from pipeline.ingest import call_digest, call_id_problem, failure, name_failure
from pipeline.ingest_notes import changed_note, forgotten_note
from pipeline.listing import Listing, Settled, list_files
from pipeline.redact_meta import quoted
from pipeline.transcript_csv import (CALL, SLOW_CHECK_S, SPEAKERS, milliseconds_as_seconds, side, too_long,
                                     too_slow, transcript_doc, unknown_speaker)

FIELDS = CALL + ("utterances",)
# exporters' names for a call's fields (`agent`, `queueName`, `startTime`; pipeline/column_names.py)
EXPORTERS = ("agent", "queuename", "started", "starttime", "callstart")


# stored calls' (source_path, file_size, file_mtime), or a function giving those at the paths it is given
StoredFiles = set[tuple[str, int, float]] | Callable[[list[str]], set[tuple[str, int, float]]]


@dataclass(frozen=True)
class Reading:
    """How a centre's transcripts are read: in its zone (see centre_time), with its exports' own names for the
    sides (callintel.yaml transcript_speakers: {"spk_0": "agent"}, names in lower case)."""
    zone: str | None = None
    speakers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, cfg) -> Reading:
        return cls(cfg.schedule.timezone, tuple(sorted(cfg.transcript_speakers.items())))

    @property
    def sides(self) -> dict[str, str]:
        return dict(self.speakers)


class _Utterance(BaseModel):
    # Times must be real numbers: JSON allows NaN/Infinity (an infinite call duration) and pydantic would
    # otherwise read true as 1.0 and "1.5" as 1.5, hiding a broken exporter.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    speaker: Literal["agent", "customer", "unknown"]
    start_s: float = Field(ge=0, strict=True)
    end_s: float = Field(ge=0, strict=True)
    text: str

    @model_validator(mode="after")
    def _ordered(self):
        if self.end_s < self.start_s:
            raise ValueError("end_s is before start_s")
        if problem := too_long(self.end_s):
            raise ValueError(problem)
        return self


class _Transcript(BaseModel):
    model_config = ConfigDict(extra="allow")
    call_id: str = Field(min_length=1)
    started_at: datetime
    agent_id: str | None = None
    queue: str | None = None
    direction: str | None = None
    utterances: list[_Utterance]

    @field_validator("call_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        if problem := call_id_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("started_at", mode="before")
    @classmethod
    def _timestamp(cls, value, info: ValidationInfo):
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 timestamp string")
        zone = (info.context or {}).get("zone")  # the centre's (see centre_time)
        try:
            started = parse_timestamp(value, zone)
        except ValueError:
            raise ValueError(f"{quoted(value)} {ISO_FORM}") from None
        if why := future_problem(started, zone):
            raise ValueError(f"{quoted(value)} {why}")
        return started


def _checked(data: bytes, rel: str, reading: Reading) -> _Transcript:
    """data parsed with json and validated; a ValueError naming the file and the problem if it is not a transcript."""
    if not data.strip():  # an exporter that failed, or a copy not begun: "Expecting value" would say nothing
        raise ValueError(f"{rel}: empty file ({len(data)} bytes); export the transcript again")
    try:
        # utf-8-sig: Windows exporters start the file with a byte-order mark
        raw = json.loads(data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n"))  # as text mode reads it
        json.dumps(raw, ensure_ascii=False).encode("utf-8")  # "\ud800" is valid JSON but no text: no table stores it
    except UnicodeDecodeError:
        raise ValueError(f"{rel}: not UTF-8 text") from None
    except UnicodeEncodeError:
        raise ValueError(f"{rel}: holds an unpaired surrogate escape (like \\ud800), which is not text; "
                         "fix the exporter") from None
    except json.JSONDecodeError as exc:
        # json's "Invalid control character at" ends where it gave the offset (a raw line break in a string)
        raise ValueError(f"{rel}: not valid JSON (line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg.removesuffix(' at')})") from None
    except RecursionError:  # "[[[[..." thousands deep: json's recursion limit, which would stop the whole batch
        raise ValueError(f"{rel}: not a transcript (JSON nested too deeply)") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{rel}: must be a JSON object with call_id, started_at and utterances")
    raw = dict(zip(read_as(list(raw), FIELDS, rel, EXPORTERS, "field"), raw.values()))  # `Call ID`, `agent`: ours
    if isinstance(turns := raw.get("utterances"), list):
        # exporters' own names (start_ms/end_ms, rep, spk_0) read as ours. Here, not in a validator: the one-pass
        # parser refuses such a file (no start_s, no known speaker), so only it pays, not every turn of every file.
        raw["utterances"] = [_as_written(t, reading.sides) if isinstance(t, dict) else t for t in turns]
        for i, (turn, was) in enumerate(zip(raw["utterances"], turns)):
            if isinstance(turn, dict) and isinstance(said := turn.get("speaker"), str) and said not in SPEAKERS:
                # as a CSV's row says it, once, with the label as written: not one pydantic error per turn
                raise ValueError(unknown_speaker(f"{rel}: utterances[{i}]", was["speaker"]))
    return _validated(raw, rel, reading)


def _one_pass(data: bytes, rel: str, reading: Reading) -> _Transcript | None:
    """The transcript parsed and checked in one pass inside pydantic-core (half the cost of json.loads +
    model_validate: reading is most of what a night of ready-made transcripts costs before the text stages), or
    None for the standard way to decide: a file it refuses, or one with an exporter's name for a field of ours."""
    if b"\\u" in data:  # an escape may be a lone surrogate, which only the standard way refuses
        return None
    try:
        doc = _Transcript.model_validate_json(data, context={"zone": reading.zone})
    except ValidationError:
        return None
    extra = list(doc.model_extra or ())
    return None if extra and read_as(extra, FIELDS, rel, EXPORTERS, "field") != extra else doc


def _as_written(turn: dict, sides: dict[str, str]) -> dict:
    """A turn with the names exports use read as ours: start_ms/end_ms as seconds, a side's other name (rep,
    caller, a configured spk_0) as agent or customer."""
    turn = milliseconds_as_seconds(turn)
    if isinstance(said := turn.get("speaker"), str):
        turn = {**turn, "speaker": side(said, sides)}
    return turn


def _validated(raw: dict, rel: str, reading: Reading) -> _Transcript:
    try:
        return _Transcript.model_validate(raw, context={"zone": reading.zone})
    except ValidationError as exc:
        raise ValueError(format_validation_error(rel, exc, _Transcript, 'README.md, "Inputs"')) from None


@dataclass
class TranscriptCall:
    call: dict          # a `calls` row
    utterances: list[dict]


def load_transcript(path: Path, rel: str, reading: Reading = Reading()) -> TranscriptCall:
    """One JSON or CSV file -> a call and its utterances; ValueError names the file and the field."""
    try:
        stat = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{rel}: cannot read the file ({exc.strerror or exc})") from None
    if rel.lower().endswith(".csv"):
        doc = _validated(transcript_doc(data, rel, reading.sides), rel, reading)
    else:
        doc = _one_pass(data, rel, reading) or _checked(data, rel, reading)  # the latter says what is wrong
    turns = sorted(doc.utterances, key=lambda u: (u.start_s, u.end_s))
    call_id, day = doc.call_id, doc.started_at.date()
    # a turn of no words (an exporter's silence) is no speech: a call of only those is no_speech, not a call whose
    # agent said none of the rubric's lines
    said = [(u, text) for u in turns if (text := " ".join(u.text.split()))]
    duration = max((u.end_s for u in turns), default=0.0)
    if duration > SLOW_CHECK_S and (problem := too_slow([(u.start_s, u.end_s, text) for u, text in said])):
        raise ValueError(f"{rel}: {problem}")
    utterances = [
        {"call_id": call_id, "utt_idx": i, "speaker": u.speaker, "start_s": u.start_s, "end_s": u.end_s,
         "text": text, "words": [], "confidence": None, "call_date": day}
        for i, (u, text) in enumerate(said)
    ]
    extra = doc.model_extra or {}
    call = {
        "call_id": call_id, "source_path": rel, "started_at": doc.started_at, "call_date": day,
        "duration_s": duration,
        "agent_id": doc.agent_id, "queue": doc.queue, "direction": doc.direction,
        "asr_model": "transcript", "status": "ok" if utterances else "no_speech",
        "file_size": stat.st_size, "file_mtime": stat.st_mtime,
        "extra": json.dumps(extra, sort_keys=True, default=str) if extra else None,
    }
    return TranscriptCall(call, utterances)


def load_transcripts(folder: Path, known_ids: set[str], since=None, forgotten: set[str] = frozenset(),
                     known_files: set[tuple[str, int, float]] = frozenset(), reading: Reading = Reading()
                     ) -> tuple[list[TranscriptCall], int, int, list[dict]]:
    """New transcripts in folder -> (calls, found, skipped, failures); forgotten calls are skipped.

    known_files holds (source_path, file_size, file_mtime) of stored calls: such a file is not even read,
    so a night costs what its new files cost, not every transcript the folder ever held. The nightly flow
    runs the same three steps with the reading spread over its workers: `new_files`, `read`, `admit`.
    """
    files, found, skipped, failures = new_files(folder, known_files)
    calls, too_old, unreadable, _ = read(files, since, forgotten, reading)
    kept, known, duplicates = admit([(c.call["call_id"], c.call["source_path"]) for c in calls], known_ids, {})
    calls = [c for c in calls if kept.get(c.call["call_id"]) == c.call["source_path"]]
    failures = sorted(failures + unreadable + duplicates, key=lambda f: f["source_path"])  # in file order
    return calls, found, skipped + too_old + len(known), failures


def new_files(folder: Path, known_files: StoredFiles = frozenset(), settled: Settled | None = None,
              out: Path | None = None) -> tuple[list[tuple[str, str]], int, int, list[dict]]:
    """(path, path relative to folder) of the files to read, found, skipped (stored, unchanged), failures.

    known_files: (source_path, file_size, file_mtime) of stored calls, or what gives those of the paths listed;
    settled: the folders last found settled (pipeline/listing.py), which are not listed again; updated with
    those this listing finds settled; out: the output folder, never read as input."""
    root, files, skipped, failures, stored = folder.resolve(), [], 0, [], set()
    listing = _transcript_files(folder, settled, out)
    if callable(known_files):
        known_files = known_files([rel for _, rel, _ in listing.files])
    for path, rel, is_link in listing.files:
        if bad_name := name_failure(rel):
            failures.append(bad_name)
        # as for recordings: never read what a link points out at
        elif is_link and not Path(path).resolve().is_relative_to(root):
            failures.append(failure(rel, "ingest", f"{rel}: a symbolic link to a file outside the transcripts "
                                                   "folder; not read"))
        elif known_files and _stored(path, rel, known_files):
            skipped += 1
            stored.add(rel)
        else:
            files.append((path, rel))
    if settled is not None:
        settled.settle(listing.leaves, stored)
    return files, len(listing.files) + listing.unchanged, skipped + listing.unchanged, failures


def recheck(files: list[tuple[str, str]], stored_paths: set[str], known_ids: set[str],
            timed_paths: set[str] = frozenset(),
            reading: Reading = Reading()) -> tuple[list, int, list[dict], list[str]]:
    """The work for `read`: a file at the path of a stored call (changed since, or stored before file times were
    kept) is read here and skipped when its call is stored, as it nearly always is, rather than prepared in a
    worker only to be refused; the rest stay paths, for the workers to read. Returns (work, known, failures,
    notes).

    A file at a path stored with its size and time (timed_paths) is here only because it changed: a corrected
    transcript, which is not used (a stored call is never replaced), so the note says so, as for a recording.
    """
    work, known, failures, notes = [], 0, [], []
    for path, rel in files:
        if rel not in stored_paths:
            work.append((path, rel))
        elif (item := _load(path, rel, failures, reading)) is not None:
            call_id = item.call["call_id"]
            if call_id not in known_ids:
                work.append(item)
                continue
            known += 1
            if rel in timed_paths:  # unlike a recording's hash id, the file's own id is refused once forgotten
                redo = (f"; to store this version instead, `callintel forget --call-id {call_id} --yes` and give "
                        "the file a new call_id (a forgotten call_id is never stored again)")
                notes.append(changed_note(rel, call_id, redo))
    return work, known, failures, notes


def read(files: list, since=None, forgotten: set[str] = frozenset(), reading: Reading = Reading()
         ) -> tuple[list[TranscriptCall], int, list[dict], list[str]]:
    """The calls of (path, rel) files, or of calls loaded already (passed through): (calls, skipped, failures,
    notes).

    Calls before `since` and forgotten calls are skipped, a forgotten one with a note, as for a recording;
    whether a call is new is `admit`'s to say.
    """
    calls, skipped, failures, notes = [], 0, [], []
    for item in files:
        loaded = _load(*item, failures, reading) if isinstance(item, tuple) else item
        if loaded is None:
            continue
        call = loaded.call
        if since and call["call_date"] < since:
            skipped += 1
        elif forgotten and call_digest(call["call_id"]) in forgotten:
            skipped += 1
            notes.append(forgotten_note(call["source_path"]))
        else:
            calls.append(loaded)
    return calls, skipped, failures, notes


def admit(loaded: list[tuple[str, str]], known_ids: set[str], seen: dict[str, str]
          ) -> tuple[dict[str, str], list[tuple[str, str]], list[dict]]:
    """Which read calls, (call_id, source_path) in file order, are new: {call_id: source_path}, the known ones
    (call_id, source_path), failures.

    seen maps the call ids admitted earlier in the night to their files, and is updated: a second file with
    the same call_id is a duplicate, reported, whichever batch it is in.
    """
    kept, known, failures = {}, [], []
    for call_id, rel in loaded:
        if call_id in known_ids:
            known.append((call_id, rel))
        elif call_id in seen:
            failures.append(failure(rel, "ingest",
                                    f"{rel}: duplicate call_id {quoted(call_id)} (also in {seen[call_id]})"))
        else:
            seen[call_id] = kept[call_id] = rel
    return kept, known, failures


def _load(path: str, rel: str, failures: list[dict], reading: Reading) -> TranscriptCall | None:
    """The file's call, or None with the reason it cannot be read added to failures."""
    try:
        return load_transcript(Path(path), rel, reading)
    except ValueError as exc:
        failures.append(failure(rel, "ingest", exc))
        return None


def _stored(path: str, rel: str, known_files: set[tuple[str, int, float]]) -> bool:
    try:
        stat = os.stat(path)
    except OSError:
        return False  # reading it will say what is wrong
    return (rel, stat.st_size, stat.st_mtime) in known_files


def _transcript_files(folder: Path, settled: Settled | None = None, out: Path | None = None) -> Listing:
    """The .json and .csv files under folder, in path order (but a recordings folder's metadata.csv, should the
    two folders be one), less the settled folders' and the output folder's (see pipeline/listing.py)."""
    return list_files(folder, _transcript_name, settled, out=out)


def _transcript_name(name: str) -> bool:
    return name.lower().endswith((".json", ".csv")) and name != "metadata.csv"
