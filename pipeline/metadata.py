"""The recordings' metadata: `metadata.csv` (or `metadata.parquet`) in the recordings folder or in any folder below
it, one row per recording, its `file` relative to the folder the metadata file is in.

A recorder that writes a folder a day writes that day's metadata beside its recordings (2026-11-20/metadata.csv);
an export of a history has one file at the top. Both are read, and a recording may be described once. A CSV is
read as spreadsheets export one (`;` or tab separated, a byte-order mark), known column names in any case.

A metadata file that cannot be read holds back the recordings of its folder and below: taken without it, they
would be stored under made-up ids and times, and a stored call is never replaced. A refused row holds back the
recording it names, for the same reason. Either is a failure every run until it is fixed.
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.centre_time import ISO_FORM, future_problem, parse_timestamp
from pipeline.column_names import ALIASES, METADATA, read_as
from pipeline.ingest import Resolver, call_id_problem, failure
from pipeline.redact_meta import quoted
from pipeline.transcript_csv import read_table

NAMES = ("metadata.csv", "metadata.parquet")  # in a folder with both, the CSV is read
COLUMNS = METADATA


@dataclass
class Metadata:
    """What the metadata files say: rows by resolved recording path, failures, and what they hold back."""
    rows: dict[Path, dict] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    held: set[Path] = field(default_factory=set)       # recordings whose row was refused
    blocked: list[Path] = field(default_factory=list)  # folders whose metadata file cannot be read
    reaches_out: set[Path] = field(default_factory=set)  # folders whose metadata file describes a file outside them
    # folders where a row names a recording that is not there: (metadata file, file named) of those rows
    unmatched: dict[Path, list[tuple[str, str]]] = field(default_factory=dict)
    resolve: Resolver = field(default_factory=Resolver, repr=False, compare=False)  # for the recordings' paths too

    def holds(self, recording: Path) -> bool:
        """Whether a recording (resolved path) waits for its metadata to be fixed."""
        return recording in self.held or any(recording.is_relative_to(folder) for folder in self.blocked)

    def misnamed(self, recording: Path, rel: str) -> str | None:
        """Why a recording no row describes waits, or None: a row beside it names a file that is not there, most
        likely this one misspelt. Taken without its row, it would be stored for good under a made-up id and time."""
        rows = self.unmatched.get(recording.parent) if recording not in self.rows else None
        if not rows:
            return None
        name, file = rows[0]
        return (f"{rel}: no row of {name} describes it, while its row for {quoted(file)} names a file that is not "
                "there; if that row means this recording, correct its file name (the recording waits until a row "
                "describes it)")


def metadata_files(folder: Path, skip: set[str] = frozenset()) -> list[Path]:
    """The metadata files under folder, the top one first; hidden folders ignored, as discover() ignores them,
    and the folders in skip (relative to folder)."""
    found = []
    for here, subfolders, files in os.walk(folder):
        below = Path(here).relative_to(folder).as_posix()
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".")
                               and (f"{below}/{name}" if below != "." else name) not in skip)
        found += [Path(here) / name for name in NAMES if name in files][:1]
    return found


def read_metadata(folder: Path, zone: str | None = None, skip: set[str] = frozenset(),
                  gone: Callable[[str, str], bool] | None = None) -> Metadata:
    """Every metadata file under folder; bad files and rows become failures. zone: the centre's (see
    centre_time), in which a started_at with an offset is read; skip: folders (relative to folder) not read,
    settled ones (pipeline/listing.py); gone(call_id, recording): whether a row whose recording is missing
    describes a call stored (or forgotten) before its recording was removed, which is no failure: a centre that
    keeps recordings 90 days had a failure for each, every night."""
    metadata, root = Metadata(), folder.resolve()
    seen_ids: dict[str, tuple[str, int]] = {}
    seen_files: dict[Path, tuple[str, int]] = {}
    listed: dict[Path, dict[str, list[Path]]] = {}  # folders listed for rows naming a missing file (_in_any_case)
    for path in metadata_files(folder, skip):
        name = path.relative_to(folder).as_posix()
        try:
            records = _records(path, name)
        except ValueError as exc:
            metadata.failures.append(failure(name, "ingest", str(exc)))
            metadata.blocked.append(path.parent.resolve())  # what it would have described waits
            continue
        base, below = path.parent.resolve(), posixpath.dirname(name)
        for line, record in records:
            if skip and _in_settled(below, record["file"], skip):
                continue  # its call is stored and its folder unchanged: not looked at again (and ~80 us a row)
            where = f"{name} line {line}"
            error, row = _row(record, root, base, where, zone, metadata.resolve, listed)
            if row.get("missing") and gone is not None and gone((record.get("call_id") or "").strip(),
                                                                _shown(name, record["file"])):
                continue
            if row.get("missing"):
                metadata.unmatched.setdefault(row["folder"], []).append((name, record["file"]))
            if error := error or _clash(row, record["file"], (name, line), seen_ids, seen_files):
                metadata.failures.append(failure(_shown(name, record["file"]), "ingest", error))
                # Not taken with a made-up id and date instead: it would be stored again under its real id once
                # the row is fixed. It waits for the fix (the failure says why, every run).
                metadata.held.add(metadata.resolve(base / record["file"]))
                # its id stays taken: a later row with the same id stored tonight would make this one, once fixed,
                # "already stored", its recording never stored and never reported
                if said := (record.get("call_id") or "").strip():
                    seen_ids.setdefault(said, (name, line))
                continue
            if row["call_id"]:
                seen_ids[row["call_id"]] = (name, line)
            seen_files[row["path"]] = (name, line)
            if row["path"].parent != base:
                metadata.reaches_out.add(base)
            metadata.rows[row["path"]] = row
    metadata.held -= set(metadata.rows)  # a file refused on one line and described by another is described
    return metadata


def _clash(row: dict, file: str, here: tuple[str, int], seen_ids: dict, seen_files: dict) -> str | None:
    """Why a valid row is refused all the same: its call_id or its recording was described before."""
    where = f"{here[0]} line {here[1]}"
    if row["call_id"] in seen_ids:
        return f"{where}: duplicate call_id {quoted(row['call_id'])} ({_first(here[0], seen_ids[row['call_id']])})"
    if row["path"] in seen_files:
        return f"{where}: file {quoted(file)} already described ({_first(here[0], seen_files[row['path']])})"
    return None


def _in_any_case(target: Path, listed: dict[Path, dict[str, list[Path]]]) -> Path | None:
    """The one file beside target whose name differs from its only in case (a row written on Windows, whose
    file names are read in any case), or None. listed: each folder's files by lower-case name, listed once (a
    metadata file keeps the rows of recordings purged since, each a row naming a missing file)."""
    if target.parent not in listed:
        files: dict[str, list[Path]] = {}
        try:
            for entry in os.scandir(target.parent):
                if entry.is_file():
                    files.setdefault(entry.name.lower(), []).append(Path(entry.path))
        except OSError:
            pass
        listed[target.parent] = files
    same = listed[target.parent].get(target.name.lower(), [])
    return same[0] if len(same) == 1 else None


def _shown(name: str, file: str) -> str:
    """A row's recording as the failures table names recordings: relative to the input folder."""
    folder = posixpath.dirname(name)
    return posixpath.normpath(posixpath.join(folder, file)) if folder and file else file


def _first(name: str, seen: tuple[str, int]) -> str:
    where, line = seen
    return f"first on line {line}" if where == name else f"first in {where} line {line}"


def _records(path: Path, name: str) -> list[tuple[int, dict[str, str]]]:
    """(line, {column: value}) of a metadata file, known column names folded to lower case; a ValueError naming
    the file when it cannot be read."""
    try:
        if path.suffix == ".csv":
            names, body, _ = read_table(path.read_bytes(), name, "metadata")
        else:  # nulls must become "" as in the CSV: astype(str) keeps them as NaN floats, which broke every row
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), "").astype(str)
            names, body = [str(c) for c in frame.columns], list(enumerate(frame.values.tolist(), start=2))
    except OSError as exc:
        raise ValueError(f"{name}: unreadable ({exc.strerror or exc})") from None
    except ValueError:
        raise
    except Exception as exc:  # pyarrow raises many kinds for a broken file
        raise ValueError(f"{name}: unreadable ({exc})") from None
    written, names = names, read_as(names, COLUMNS, name, ALIASES)  # `Call ID`, `agent`: ours; `callid` refused
    if "file" not in names:
        raise ValueError(f"{name}: no 'file' column; it names each recording (the columns: "
                         f"{', '.join(n for n in written if n) or 'none'})")
    records = [(line, {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names) if n})
               for line, row in body]
    for _, record in records:
        record["file"] = record["file"].replace("\\", "/")  # a Windows recorder's separator
    return records


def _in_settled(below: str, file, settled: set[str]) -> bool:
    """Whether a row's file (relative to `below`, its metadata file's folder) is in a settled folder."""
    return isinstance(file, str) and posixpath.dirname(posixpath.normpath(posixpath.join(below, file))) in settled


def _row(record: dict, root: Path, base: Path, where: str, zone: str | None, resolve: Resolver,
         listed: dict) -> tuple[str | None, dict]:
    """(why the row is refused, or None; the row). base: the metadata file's folder, which `file` is relative to."""
    file = record["file"]
    if not file:
        return f"{where}: file is empty; it names the recording the row describes", {}
    target = resolve(base / file)
    if Path(file).is_absolute() or not target.is_relative_to(root):
        return f"{where}: file {quoted(file)} is outside the input folder", {}
    if not target.is_file() and (other := _in_any_case(target, listed)) is not None:
        target = resolve(other) if resolve(other).is_relative_to(root) else target
    if not target.is_file():
        return f"{where}: file {quoted(file)} not found", {"missing": True, "folder": resolve(base / file).parent}
    error, row = described(record, where, zone)
    return error, {"path": target, **row}


def described(values: dict[str, str], where: str, zone: str | None,
              started_at_format: str | None = None) -> tuple[str | None, dict]:
    """(why the values cannot describe a call, or None; the call's fields and extra) from a metadata row or a
    recording's name. started_at_format: a strptime format (None: ISO-8601); a time is the centre's clock."""
    started, said = None, values.get("started_at")
    if said:
        try:
            started = parse_timestamp(said, zone, started_at_format)
        except ValueError:
            form = f"does not match {started_at_format!r}" if started_at_format else ISO_FORM
            return f"{where}: started_at {quoted(said)} {form}", {}
        if why := future_problem(started, zone):
            return f"{where}: started_at {quoted(said)} {why}", {}
    channel = values.get("agent_channel", "").lower() or None
    if channel not in (None, "left", "right", "mono"):
        return f"{where}: agent_channel {quoted(channel)} must be left, right or mono", {}
    clean = lambda key: values.get(key) or None  # noqa: E731
    if clean("call_id") and (problem := call_id_problem(clean("call_id"))):
        return f"{where}: call_id {quoted(clean('call_id'))} {problem}", {}
    extra = {k: v for k, v in values.items() if k not in COLUMNS and v != ""}
    return None, {"call_id": clean("call_id"), "started_at": started, "agent_channel": channel,
                  "agent_id": clean("agent_id"), "queue": clean("queue"), "direction": clean("direction"),
                  "extra": extra}
