"""Data-subject deletions: which stored calls a request names, and how the deletion is recorded."""
from __future__ import annotations

import getpass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc


def select_calls(calls: pa.Table, call_ids: tuple[str, ...] = (), agent: str | None = None,
                 since: date | None = None) -> set[str]:
    """Ids of the calls matching every given selector (call ids, agent, started on or after since).

    Example:
        >>> select_calls(pa.table({"call_id": ["a", "b"], "agent_id": ["x", "y"],
        ...                        "call_date": [date(2026, 11, 9), date(2026, 11, 20)]}), agent="y")
        {'b'}
    """
    conditions = []
    if call_ids:
        conditions.append(pc.is_in(calls["call_id"], pa.array(list(call_ids), pa.string())))
    if agent:
        conditions.append(pc.equal(calls["agent_id"], agent))
    if since:
        conditions.append(pc.greater_equal(calls["call_date"], since))
    if not conditions:
        return set()
    mask = conditions[0]
    for condition in conditions[1:]:
        mask = pc.and_(mask, condition)
    return set(calls.filter(pc.fill_null(mask, False))["call_id"].to_pylist())


def deletion_record(calls: int, **selectors) -> dict:
    """The `deletions` row: who and when, and which kinds of selector were used, never their values."""
    stamp = datetime.now().replace(microsecond=0)
    return {"deletion_id": f"forget-{stamp:%Y%m%dT%H%M%S}", "deleted_at": stamp, "deleted_by": getpass.getuser(),
            "selection": ",".join(kind for kind, value in selectors.items() if value), "calls": calls}
