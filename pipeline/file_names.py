"""What a recorder writes in a recording's name, for a recorder that writes no metadata.csv: callintel.yaml

    file_names:
      pattern: '(?P<started_at>\\d{8}_\\d{6})_(?P<agent_id>[^_/]+)_(?P<call_id>[^_/.]+)\\.\\w+$'
      started_at_format: '%Y%m%d_%H%M%S'

The pattern is searched in each recording's path under the input folder (so a day folder can hold the date);
its named groups are metadata.csv's columns (call_id, started_at, agent_id, queue, direction, agent_channel),
and any other named group goes to `calls.extra`. A metadata.csv row for the recording wins, value by value.

A recording whose name does not match, or holds a value that cannot be one (a started_at that does not match
the format), waits with a failure, as one whose metadata row is refused does: stored without its id, it would be
stored again once its name is read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.metadata import described


@dataclass(frozen=True)
class FileNames:
    pattern: re.Pattern
    started_at_format: str | None = None

    @classmethod
    def of(cls, cfg) -> FileNames | None:
        """The configured reading of recordings' names (Config.file_names), or None."""
        names = cfg.file_names
        return cls(re.compile(names.pattern), names.started_at_format) if names else None

    def read(self, rel: str, zone: str | None = None) -> tuple[str | None, dict]:
        """(why the name says nothing usable, or None; the fields a metadata row would give) of a recording's path
        relative to the input folder."""
        match = self.pattern.search(rel)
        if match is None:
            return (f"{rel}: the name does not match file_names.pattern, so its call id and time cannot be read; "
                    "not stored until it does (or a metadata.csv row describes it)"), {}
        values = {name: value for name, value in match.groupdict().items() if value}
        return described(values, f"{rel}: in its name", zone, self.started_at_format)


def merged(named: dict, row: dict | None) -> dict:
    """A recording's metadata from its name and its metadata.csv row: the row's values win where it has one."""
    if not row:
        return named
    fields = {k: v for k, v in named.items() if k != "extra"}
    fields.update({k: v for k, v in row.items() if v or k not in fields})
    return {**fields, "extra": {**named.get("extra", {}), **row.get("extra", {})}}


def describe(names: FileNames | None, rel: str, row: dict, zone: str | None) -> tuple[str | None, dict]:
    """(why a recording waits, or None; its metadata) from its metadata.csv row and, when configured, its name.
    A name that says nothing usable matters only for a recording no row describes."""
    if names is None:
        return None, row
    error, named = names.read(rel, zone)
    if error:
        return (None, row) if row else (error, {})
    return None, merged(named, row)
