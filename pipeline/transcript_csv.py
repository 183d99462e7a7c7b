"""Ready-made transcripts as CSV: one file per call, one row per turn, as speech-analytics tools and
spreadsheets export them (DESIGN.md: "JSON/CSV turns with speaker and times").

    call_id,started_at,agent_id,queue,direction,speaker,start_s,end_s,text
    c-0101,2026-11-20T09:14:00,a_ruiz,billing,inbound,agent,0.4,3.1,Thank you for calling Skyline
    c-0101,2026-11-20T09:14:00,a_ruiz,billing,inbound,customer,3.4,6.0,"Hi, my bill is wrong"

speaker (agent, customer or unknown, or an export's word for a side: rep, caller, ...), start_s, end_s
(or start_ms, end_ms), text and started_at are required; call_id defaults to the file's name. A call's
columns (started_at, agent_id, ...) may be on every row or only the first, and rows must not disagree on
them, except that a transferred call's agent_id and queue may change (the first is the call's, and all are
kept in order in `calls.extra` as agent_ids and queues). Any other column with one value, on every row or
on the first only, is kept, as a JSON transcript's extra fields are, in `calls.extra`. The file becomes the
same object a JSON transcript is, and is checked by the same rules.
"""
from __future__ import annotations

import csv
import io
import math
import re
from decimal import Decimal
from pathlib import PurePosixPath

from pipeline.column_names import read_names
from pipeline.redact_meta import quoted  # a bad value is quoted in errors, which are stored: never PII

TURN = ("speaker", "start_s", "end_s", "text")
CALL = ("call_id", "started_at", "agent_id", "queue", "direction")
SPEAKERS = ("agent", "customer", "unknown")
TRANSFERRED = {"agent_id": "agent_ids", "queue": "queues"}  # call columns a transfer changes -> extra key of all
# what contact-centre exports call the two sides; a numbered speaker ("Speaker 1") says neither, so it is refused
SAID_FOR = {**dict.fromkeys(("rep", "representative", "advisor", "adviser", "operator", "csr", "associate",
                             "employee", "staff"), "agent"),
            **dict.fromkeys(("caller", "client", "consumer", "member", "contact"), "customer")}
DAY_S = 86400.0  # no call lasts a day: a time past it is in other units, nearly always milliseconds
CLOCK = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)")  # 1:02:03.5 or 02:03.5, as subtitle tools write


def transcript_doc(data: bytes, rel: str, sides: dict[str, str] | None = None) -> dict:
    """The CSV's call as a JSON transcript's object; a ValueError naming the file (and row) when it is not one."""
    rows, comma_decimals = _rows(data, rel)
    call = _call_columns([row for _, row in rows], rel)
    call.setdefault("call_id", PurePosixPath(rel).stem)
    turns = [_turn(row, n, rel, comma_decimals, sides or {}) for n, row in rows]
    return {**call, "utterances": turns}


def _rows(data: bytes, rel: str) -> tuple[list[tuple[int, dict]], bool]:
    """The rows as (row number, {column: value}) (column names lower case), and whether decimals are written with
    a comma."""
    names, body, delimiter = read_table(data, rel, "transcript")
    if not body:  # else the first thing missed would be started_at, which the header names
        raise ValueError(f"{rel}: a header and no rows; export the transcript again")
    # `Call ID`, `agent`: ours; `agent_idd` refused, not an extra field; the other columns' names in lower case
    read, problems = read_names(names, TURN + CALL + ("start_ms", "end_ms"), ("agent", "queuename"))
    names = [name.lower() for name in read]
    if missing := [c for c in TURN + ("started_at",) if c not in names and c.replace("_s", "_ms") not in names]:
        problems.append(f"no column {', '.join(missing)} (its columns: {', '.join(names)}); see README.md, \"Inputs\"")
    if problems:  # all at once: an export with other names has several, which took a night each
        raise ValueError(f"{rel}: {'; '.join(problems)}")
    return [(n, _named(names, row)) for n, row in body], delimiter == ";"


def read_table(data: bytes, rel: str, what: str) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """A spreadsheet's CSV export as (column names, stripped; [(row number, cells)], delimiter); a ValueError
    naming the file when it is not one. what: the thing to export again ("transcript"), for the messages."""
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError:
        try:  # Excel's "CSV" on Windows is Windows-1252: the file as saved, not one to export again
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise ValueError(f"{rel}: neither UTF-8 nor Windows-1252 text; export the CSV as UTF-8") from None
    if not text.strip():
        raise ValueError(f"{rel}: empty file ({len(data)} bytes); export the {what} again")
    header = text.lstrip().splitlines()[0]
    # a spreadsheet set to a language whose decimal mark is a comma separates columns with ";"
    delimiter = max([",", ";", "\t"], key=header.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    if not (records := _records(reader, rel)):
        raise ValueError(f"{rel}: no header row (its lines are blank)")
    (_, names), *body = records
    names = [name.strip() for name in names]
    lowered = [name.lower() for name in names]  # "Text" and "text" are one column, twice
    if twice := sorted({name for name in lowered if name and lowered.count(name) > 1}):
        raise ValueError(f"{rel}: column {', '.join(twice)} appears twice")
    for n, row in body:
        if len(row) > len(names):
            raise ValueError(f"{rel}: row {n} has {len(row)} cells but the header {len(names)} (a {delimiter!r} in "
                             "a text that is not in quotes?)")
    return names, body, delimiter


def _named(names: list[str], row: list[str]) -> dict[str, str]:
    """A row as {column: value}; a spreadsheet exports the blank columns someone once typed in as columns with no
    name, and nothing can name them."""
    return {name: row[i].strip() for i, name in enumerate(names) if name and i < len(row)}


def _records(reader, rel: str) -> list[tuple[int, list[str]]]:
    """The non-blank records with their row numbers as a spreadsheet shows them (blank rows count, a text's line
    breaks do not); a broken one is named by the line it starts on (an unclosed quote runs to the end)."""
    records, start = [], 1
    try:
        for n, record in enumerate(reader, start=1):
            if any(cell.strip() for cell in record):
                records.append((n, record))
            start = reader.line_num + 1
    except csv.Error as exc:
        hint = " (a quote that is never closed?)" if "end of data" in str(exc) else ""
        raise ValueError(f"{rel}: not valid CSV from line {start}: {exc}{hint}") from None
    return records


def _call_columns(rows: list[dict], rel: str) -> dict:
    """The call's own columns, and any other column with one value on every row or on the first row only, as the
    call's columns are written (kept as extra); a column whose value changes from turn to turn is the turn's."""
    call = {}
    for name in rows[0] if rows else ():
        if name in TURN:
            continue
        values = {row.get(name, "") for row in rows} - {""}
        if len(values) > 1 and name in TRANSFERRED:
            # a transferred call: it is the first agent's (or queue's), who took it; the others are kept in order
            in_order = list(dict.fromkeys(value for row in rows if (value := row.get(name, ""))))
            call[name], call[TRANSFERRED[name]] = in_order[0], in_order
            continue
        if len(values) > 1 and name in CALL:
            first, other = sorted(values)[:2]
            raise ValueError(f"{rel}: the rows disagree on {name} ({quoted(first)} and {quoted(other)}); a file is "
                             "one call")
        on_rows = [bool(row.get(name)) for row in rows]
        if len(values) == 1 and (name in CALL or all(on_rows) or not any(on_rows[1:])):
            call[name] = values.pop()
    return call


def side(said: str, sides: dict[str, str]) -> str:
    """The side a speaker label stands for: agent, customer or unknown, as the centre names its exports' speakers
    (callintel.yaml transcript_speakers) or as exports call the sides (SAID_FOR); else the label, lower case."""
    said = said.strip().lower()
    return sides.get(said) or SAID_FOR.get(said, said)


def unknown_speaker(where: str, said: str) -> str:
    """The error for a speaker label that names no side: CSV rows and JSON turns say it alike."""
    return (f"{where}: speaker {quoted(said)} is not agent, customer or unknown, nor a word for one (rep, caller, "
            "...); name it in callintel.yaml transcript_speakers")


def _turn(row: dict, n: int, rel: str, comma_decimals: bool, sides: dict[str, str]) -> dict:
    speaker = side(row.get("speaker", ""), sides)
    if speaker not in SPEAKERS:
        raise ValueError(unknown_speaker(f"{rel}: row {n}", row.get("speaker", "")))
    start, end = (_time(row, key, f"{rel}: row {n}", comma_decimals) for key in ("start_s", "end_s"))
    if end < start:
        raise ValueError(f"{rel}: row {n}: end_s is before start_s")
    if problem := too_long(end):
        raise ValueError(f"{rel}: row {n}: {problem}")
    return {"speaker": speaker, "start_s": start, "end_s": end, "text": row.get("text", "")}


def too_long(end_s: float) -> str | None:
    """Why a turn's end cannot be in seconds, or None."""
    if end_s > DAY_S:
        return (f"end_s {end_s:g} is more than a day into the call; times are in seconds (milliseconds may be "
                "given as start_ms and end_ms)")
    return None


def too_slow(turns: list[tuple[float, float, str]]) -> str | None:
    """Why a call's times cannot be in seconds, or None: its turns (start_s, end_s, text) are said at under 3 words
    a minute, as times in milliseconds written as seconds give (people say about 150; 0.15 so written). The
    median turn's pace, so a long "[music]" or hold turn is not the call's. Worth asking only of calls over
    SLOW_CHECK_S, as a call of more than 0.6 s in milliseconds is (too_long catches those over 86 s alone)."""
    paces = sorted(len(text.split()) * 60 / (end - start) for start, end, text in turns if end > start)
    if len(paces) < 3 or (median := paces[len(paces) // 2]) >= SLOWEST_WPM:
        return None
    return (f"its turns are said at {median:.2g} words a minute (the median turn; people say about 150), so the "
            "times look like milliseconds: give them in seconds, or as start_ms and end_ms")


SLOW_CHECK_S, SLOWEST_WPM = 600.0, 3.0


def milliseconds_as_seconds(turn: dict) -> dict:
    """A turn whose times are start_ms/end_ms (and not start_s/end_s) with them in seconds; other turns as given.
    A value that is not a number is left for the seconds' check to name."""
    if "start_s" in turn and "end_s" in turn:  # nearly every turn: returned as it is, with no copy
        return turn
    turn = dict(turn)
    for key in ("start_s", "end_s"):
        value = turn.get(key.replace("_s", "_ms"))
        if key not in turn and isinstance(value, (int, float)) and not isinstance(value, bool):
            turn[key] = value / 1000
    return turn


def _time(row: dict, key: str, where: str, comma_decimals: bool) -> float:
    """The turn's start_s or end_s in seconds, from its column or, failing that, its _ms column."""
    if key in row or (ms := key.replace("_s", "_ms")) not in row:
        return _seconds(row.get(key, ""), f"{where}: {key}", comma_decimals)
    if (millis := _amount(row[ms].replace(",", ".") if comma_decimals else row[ms])) is None:
        raise ValueError(f"{where}: {ms}: {quoted(row[ms])} is not a number of milliseconds")
    return millis / 1000


def _amount(value: str) -> float | None:
    """A finite number >= 0 (a time or a length of time), or None."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _seconds(value: str, where: str, comma_decimals: bool) -> float:
    """Seconds from `12.5` (`12,5` where a comma is the decimal mark) or a clock time `1:02:03.5` / `02:03.5`."""
    if comma_decimals:
        value = value.replace(",", ".")
    if clock := CLOCK.fullmatch(value):
        hours, minutes, seconds = clock.groups()
        # in decimal, so 1:10.123 is the float 70.123 is, as the same time written in seconds would be
        return float(Decimal(int(hours or 0) * 3600 + int(minutes) * 60) + Decimal(seconds.replace(",", ".")))
    if (seconds := _amount(value)) is None:
        raise ValueError(f"{where}: {quoted(value)} is not a time (seconds, like 12.5, or a clock time, like 1:02.5)")
    return seconds
