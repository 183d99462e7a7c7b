"""Interval arithmetic over many calls at once, in numpy: the building blocks of pipeline/metrics.py.

Every function takes parallel arrays whose `call` column numbers the call each row belongs to, and works within
each call without a Python loop per row or per call. Results are exactly those of the plain loops they replace
(sorted tuples merged one by one, summed in order): comparisons are made on the same floats, running maxima
through exact integer ranks, and per-call sums with `np.bincount`, which adds in row order as `sum()` does.
Intervals must not end before they start (metrics.py makes sure).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Islands(NamedTuple):
    """Runs of intervals joined into one, in (call, at) order. `first` is the row (in the order given) each run
    begins with (of rows starting at one instant, the one the caller's tie-breaks put first); `bounds` is where each
    run begins in `order`, the sorted rows, for reducing other columns over the runs (np.ufunc.reduceat)."""
    call: np.ndarray
    at: np.ndarray
    until: np.ndarray
    first: np.ndarray
    bounds: np.ndarray
    order: np.ndarray


def running_max(call: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The maximum of `values` so far within each call (`call` sorted): made exact by ranking the values and
    lifting each call's ranks above the previous call's, so one accumulate serves every call."""
    if not len(values):
        return values
    distinct, rank = np.unique(values, return_inverse=True)
    lifted = call.astype(np.int64) * len(distinct)
    return distinct[np.maximum.accumulate(lifted + rank) - lifted]


def islands(call: np.ndarray, start: np.ndarray, end: np.ndarray, gap: float | None = None,
            tie_break: np.ndarray | None = None) -> Islands:
    """Intervals merged within each call. gap None: overlapping or touching intervals merge (`start <= until`); a
    number: an interval starting at most `gap` after the run's end joins it (`start - until <= gap`). Rows are
    sorted by call, start, then tie_break."""
    keys = (start, call) if tie_break is None else (tie_break, start, call)
    order = np.lexsort(keys)
    c, s, e = call[order], start[order], end[order]
    new = np.ones(len(s), dtype=bool)
    if len(s) > 1:
        until = running_max(c, e)[:-1]
        joins = (s[1:] <= until) if gap is None else (s[1:] - until <= gap)
        new[1:] = (c[1:] != c[:-1]) | ~joins
    bounds = np.flatnonzero(new)
    if not len(bounds):
        none = np.empty(0, dtype=np.int64)
        return Islands(none, np.empty(0), np.empty(0), none, none, order)
    return Islands(c[bounds], s[bounds], np.maximum.reduceat(e, bounds), order[bounds], bounds, order)


def per_call(calls: int, call: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum of weights (or count of rows) of each call, added in row order."""
    return np.bincount(call, weights=weights, minlength=calls) if len(call) else np.zeros(calls)


def gaps(runs: Islands) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(call, length, the island after it) of each silence between consecutive islands of one call, in order."""
    after = np.flatnonzero(runs.call[1:] == runs.call[:-1]) + 1
    return runs.call[after], runs.at[after] - runs.until[after - 1], after


def group_max(calls: int, call: np.ndarray, values: np.ndarray, empty: float = 0.0) -> np.ndarray:
    out = np.full(calls, -np.inf)
    np.maximum.at(out, call, values)
    out[np.isinf(out)] = empty
    return out


def first_of_max(call: np.ndarray, values: np.ndarray, maxima: np.ndarray) -> np.ndarray:
    """Index of the first row of each call (in row order) whose value is that call's maximum."""
    hit = np.flatnonzero(values == maxima[call])
    _, first = np.unique(call[hit], return_index=True)
    return hit[first]


def overlap(calls: int, a: Islands, b: Islands) -> np.ndarray:
    """Time covered by both sets of islands in each call (each set disjoint within a call): a sweep over their
    ends, adding each stretch both cover, in time order."""
    t = np.concatenate([a.at, a.until, b.at, b.until])
    delta = np.concatenate([np.ones(len(a.at)), -np.ones(len(a.at)), np.ones(len(b.at)), -np.ones(len(b.at))])
    call = np.concatenate([a.call, a.call, b.call, b.call])
    order = np.lexsort((delta, t, call))  # ends before starts at one instant: no stretch of zero both covered
    t, call, covered = t[order], call[order], np.cumsum(delta[order])
    both = (covered[:-1] == 2) & (call[1:] == call[:-1])
    return per_call(calls, call[:-1][both], (t[1:] - t[:-1])[both])


def last_before(call_a: np.ndarray, at_a: np.ndarray, call_b: np.ndarray, at_b: np.ndarray) -> np.ndarray:
    """For each row of a, the index of the last row of b in the same call starting strictly before it, or -1
    (b sorted by call, at): bisect_left - 1 within each call, on exact ranks of the times."""
    distinct, rank = np.unique(np.concatenate([at_a, at_b]), return_inverse=True)
    key_a = call_a.astype(np.int64) * len(distinct) + rank[:len(at_a)]
    key_b = call_b.astype(np.int64) * len(distinct) + rank[len(at_a):]
    k = np.searchsorted(key_b, key_a, side="left") - 1
    same = (k >= 0) & (call_b[np.maximum(k, 0)] == call_a) if len(call_b) else np.zeros(len(call_a), dtype=bool)
    return np.where(same, k, -1)
