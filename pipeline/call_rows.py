"""A call's rows of a page table as columns: one list per column, cut from a batch's Arrow table.

A scorecard page reads some 35 rows a call (utterances, signal hits, criteria). As a dict per row, built by
`Table.to_pylist` and grouped by call in Python, they cost a quarter of a page; as columns they are one
`to_pylist` per column for the whole batch and a slice per call, and a page's parts read them column by column.
`Rows` still iterates as dicts, for the few readers that want a row at a time (`callintel scorecard`'s text).

Example:
    >>> rows = Rows({"utt_idx": [1, 0], "text": ["b", "a"]})
    >>> rows.sorted(rows["utt_idx"])["text"], list(rows)[0]
    (['a', 'b'], {'utt_idx': 1, 'text': 'b'})
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc


ROWS = ("utterances", "signal_hits", "scorecard_items")  # the page tables with many rows a call: as Rows


class Rows:
    """Rows of one table (of one call, mostly) as {column: values}, every column as long as the others."""

    __slots__ = ("columns",)

    def __init__(self, columns: dict[str, list]):
        self.columns = columns

    @classmethod
    def of(cls, rows: Rows | Iterable[dict], names: Iterable[str], required: tuple[str, ...] = ()) -> Rows:
        """rows as Rows: itself, or dicts turned into the named columns (a missing key is None, except the
        `required` ones, which raise KeyError as the row's own lookup did)."""
        if isinstance(rows, Rows):
            return rows
        rows = list(rows)
        return cls({name: [r[name] for r in rows] if name in required else [r.get(name) for r in rows]
                    for name in names})

    def __getitem__(self, name: str) -> list:
        return self.columns[name]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), ()))

    def __iter__(self) -> Iterator[dict]:
        names = list(self.columns)
        return (dict(zip(names, values)) for values in zip(*self.columns.values()))

    def __eq__(self, other) -> bool:
        return isinstance(other, Rows) and self.columns == other.columns

    def __repr__(self) -> str:
        return f"Rows({self.columns!r})"

    def take(self, order: list[int]) -> Rows:
        return Rows({name: [values[i] for i in order] for name, values in self.columns.items()})

    def sorted(self, keys: list) -> Rows:
        """The rows in the order sorted() puts them by their keys (a key a row): stable, as sorting the dicts was;
        themselves when in that order already (as a bundle's are)."""
        if keys == sorted(keys):
            return self
        return self.take(sorted(range(len(keys)), key=keys.__getitem__))


def by_call(table: pa.Table) -> tuple[dict[str, list], dict[str, tuple[int, int]]]:
    """The table's columns as lists, its rows grouped by call_id (in their order within a call: a stable sort),
    and where each call's rows are in them: call_id -> (start, stop)."""
    if not table.num_rows:
        return {name: [] for name in table.column_names}, {}
    runs = _runs(table)
    if len(runs.values) != pc.count_distinct(runs.values).as_py():  # a call's rows apart: not as a batch has them
        table = table.take(pc.sort_indices(table, [("call_id", "ascending")]))
        runs = _runs(table)
    ends = runs.run_ends.to_pylist()
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    return columns, dict(zip(runs.values.to_pylist(), zip([0] + ends[:-1], ends)))


def _runs(table: pa.Table) -> pa.RunEndEncodedArray:
    return pc.run_end_encode(table.column("call_id").combine_chunks())


def cut(columns: dict[str, list], spans: dict[str, tuple[int, int]], call_id: str) -> Rows:
    """The call's rows (by_call's columns and spans) but their call_id, which they share; none if it has none."""
    start, stop = spans.get(call_id, (0, 0))
    return Rows({name: values[start:stop] for name, values in columns.items() if name != "call_id"})


def plain(value):
    """A page's rows as values marshal writes (scorecard.fingerprint): Rows as their columns, a row (or rows) with
    its dates as ISO text, in a new dict."""
    if isinstance(value, Rows):
        return value.columns
    if isinstance(value, dict):
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
