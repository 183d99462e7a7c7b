"""`topic_trends`: per topic per day, how many calls and turns, against its trailing baseline.

Definitions (one row per topic per calendar day that has any call in the input):
- utterances: the topic's turns that day; calls: distinct calls with at least one of them.
- share = calls / the day's calls in the input (every call with a turn discovery looked at,
  outlier turns included). Calls, not turns, because one caller repeating a problem three times
  is one customer with the problem, and a share of calls reads like `signal_trends`' share.
  Counting outlier calls in the denominator keeps a topic's share from jumping when another
  topic's turns fall to outlier.
- baseline_share: the same share pooled over the `baseline_days` calendar days before the day
  (the day itself excluded): their topic calls / their calls. Null when those days have no call.
- z: two-proportion z-test of the day against the baseline with the pooled proportion,
  z = (p - p0) / sqrt(P (1 - P) (1/n + 1/n0)), P = (x + x0) / (n + n0). Unlike a one-sample
  test against p0 it stays defined for a topic the baseline never saw (p0 = 0). Null without
  baseline calls; 0 when P is 0 or 1 (no variation to test).
- emerging: *rising* (calls >= `min_calls` and z >= `z_threshold`) or *new*: first_seen at most
  `new_days - 1` days before the day, after the first day of the input (on the first day every topic
  is "new"), with at least `new_min_mentions` turns that day (a new topic needs no second call: it
  exists only because several turns clustered). The outlier topic (-1) has rows but is never emerging.

Vectorised: counts are pivoted to a topics x days matrix and windows are differences of
cumulative sums; no Python loop over rows.

Example:
    >>> topic_trends(utterance_topics, first_seen=pipeline.topics.first_seen(model))
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

COLUMNS = ["topic_id", "day", "utterances", "calls", "share", "baseline_share", "z", "emerging"]


@dataclass(frozen=True)
class TrendOptions:
    baseline_days: int = 7
    z_threshold: float = 3.0
    min_calls: int = 2
    new_min_mentions: int = 2
    new_days: int = 3


def topic_trends(rows, first_seen: Mapping[int, date] | None = None,
                 options: TrendOptions = TrendOptions()) -> pd.DataFrame:
    """rows: topic_id, call_id, call_date (e.g. `utterance_topics`); first_seen: topic_id -> date
    (default: the first day the topic has a row). Returns the `topic_trends` columns."""
    df = rows.to_pandas() if isinstance(rows, pa.Table) else pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(COLUMNS, [
            "int32", "object", "int64", "int64", "float64", "float64", "float64", "bool"])})
    df = df.assign(day=pd.to_datetime(df["call_date"]).dt.normalize())
    days = pd.date_range(df["day"].min(), df["day"].max(), freq="D")
    topics = np.sort(df["topic_id"].unique())
    grid = pd.MultiIndex.from_product([topics, days], names=["topic_id", "day"])
    per = df.groupby(["topic_id", "day"]).agg(utterances=("call_id", "size"), calls=("call_id", "nunique"))
    per = per.reindex(grid, fill_value=0)
    calls = per["calls"].to_numpy().reshape(len(topics), len(days)).astype(float)
    total = df.groupby("day")["call_id"].nunique().reindex(days, fill_value=0).to_numpy().astype(float)

    base_calls, base_total = _trailing(calls, options.baseline_days), _trailing(total[None, :], options.baseline_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = calls / total
        baseline = np.where(base_total > 0, base_calls / base_total, np.nan)
        z = _z(calls, total, base_calls, base_total)

    seen = _first_seen(topics, days, calls, first_seen)
    age = np.arange(len(days))[None, :] - seen[:, None]
    new = (seen[:, None] > 0) & (age >= 0) & (age < options.new_days)
    rising = z >= options.z_threshold
    mentions = per["utterances"].to_numpy().reshape(len(topics), len(days))
    emerging = (((calls >= options.min_calls) & rising) | (new & (mentions >= options.new_min_mentions))) \
        & (topics[:, None] != -1)

    out = per.reset_index().assign(share=share.ravel(), baseline_share=baseline.ravel(), z=z.ravel(),
                                   emerging=emerging.ravel())
    out = out[np.tile(total > 0, len(topics))]      # no row for a day without calls (weekends)
    out = out.assign(topic_id=out["topic_id"].astype("int32"), day=out["day"].dt.date,
                     utterances=out["utterances"].astype("int64"), calls=out["calls"].astype("int64"))
    return out[COLUMNS].reset_index(drop=True)


def _trailing(matrix: np.ndarray, width: int) -> np.ndarray:
    """Sum of the `width` columns before each column (the column itself excluded)."""
    cumulative = np.concatenate([np.zeros((matrix.shape[0], 1)), np.cumsum(matrix, axis=1)], axis=1)
    end = np.arange(matrix.shape[1])
    return cumulative[:, end] - cumulative[:, np.maximum(end - width, 0)]


def _z(x: np.ndarray, n: np.ndarray, x0: np.ndarray, n0: np.ndarray) -> np.ndarray:
    """Pooled two-proportion z of x/n against x0/n0; NaN where either side has no calls."""
    pooled = (x + x0) / (n + n0)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n0))
    z = np.where(se > 0, (x / n - x0 / n0) / se, 0.0)
    return np.where((n > 0) & (n0 > 0), z, np.nan)


def _first_seen(topics: np.ndarray, days: pd.DatetimeIndex, calls: np.ndarray,
                given: Mapping[int, date] | None) -> np.ndarray:
    """Day index of each topic's first_seen (may be negative: before the input; len(days): never)."""
    from_data = np.where(calls.any(axis=1), calls.argmax(axis=1), len(days))
    if not given:
        return from_data
    # one step per topic (not per row): a given date wins over the data's first day
    return np.array([(pd.Timestamp(given[t]) - days[0]).days if given.get(t) is not None else f
                     for t, f in zip(topics.tolist(), from_data.tolist())], dtype=np.int64)
