"""Column names as spreadsheets and exporters write them, read as the columns callintel knows.

`Call ID`, `call-id` and `CallId` are all call_id, and a few exporters' own names (`agent`, `filename`,
`queue_name`) are read as ours. A name one slip away from a known column (`agent_chanel`) is refused, naming the
column it resembles: kept as an extra field, as other columns are, it left metadata.csv's `callid` out, so every
call of the file was stored under a made-up id, for good (a stored call is never replaced).
"""
from __future__ import annotations

import re
from collections.abc import Collection

from rapidfuzz.distance import DamerauLevenshtein

# metadata.csv's columns (and file_names.pattern's groups, less file)
METADATA = frozenset({"file", "call_id", "started_at", "agent_id", "queue", "direction", "agent_channel"})
# exporters' names for our columns, folded (see _fold); each used only where its column is read
ALIASES = {"agent": "agent_id", "filename": "file", "recording": "file", "queuename": "queue",
           "started": "started_at", "starttime": "started_at", "callstart": "started_at"}
NEAR = 1  # edits (a letter left out, added, changed, or two swapped) within which a name is a misspelt known one


def _fold(name: str) -> str:
    return re.sub(r"[\s_.-]+", "", name.lower())


def read_as(names: list[str], known: Collection[str], rel: str, aliases: Collection[str] = (),
            what: str = "column") -> list[str]:
    """The names with each known column's own name (however it is written, or by one of `aliases`' names), the
    others as written. A ValueError naming the file for a name that looks misspelt, or two read as one column.
    what: what a name names in the file ("column", or a JSON transcript's "field"), for the messages."""
    read, problems = read_names(names, known, aliases, what)
    if problems:
        raise ValueError(f"{rel}: {'; '.join(problems)}")
    return read


def read_names(names: list[str], known: Collection[str], aliases: Collection[str] = (),
               what: str = "column") -> tuple[list[str], list[str]]:
    """(read_as's names, each name it refuses and why): a file's every problem told at once, not one a night."""
    ours = _ours(known, aliases)
    read, problems = [], []
    for name in names:
        column = ours.get(_fold(name)) if name else None
        if column is None and name and (meant := resembles(name, known, aliases)):
            problems.append(f"{what} {name!r} is not one callintel reads; did you mean {meant!r}? (rename it: a "
                            f"{what} callintel does not read is kept in calls.extra, so a misspelt one is refused)")
        elif column is not None and column in read:
            problems.append(f"{what}s {names[read.index(column)]!r} and {name!r} are both read as {column!r}; "
                            "keep one")
            column = None
        read.append(column or name)
    return read, problems


def resembles(name: str, known: Collection[str], aliases: Collection[str] = ()) -> str | None:
    """The known column a name not exactly one of them stands for or looks misspelt from, or None."""
    if name in known:
        return None
    ours, folded = _ours(known, aliases), _fold(name)
    if folded in ours:
        return ours[folded]
    near = min(ours, key=lambda k: DamerauLevenshtein.distance(folded, k))  # "callerid" is 2 from callid: its own
    if folded == near + "s":  # `queues`, `agent_ids`: a transferred call's list of them, not a slip
        return None
    return ours[near] if DamerauLevenshtein.distance(folded, near) <= NEAR else None


def _ours(known: Collection[str], aliases: Collection[str]) -> dict[str, str]:
    return {_fold(k): k for k in known} | {alias: ALIASES[alias] for alias in aliases if ALIASES[alias] in known}
