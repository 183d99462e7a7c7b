"""The centre's clock: a call's start and day as the contact centre reads them.

Contact centres reason in their own clock: a call's day (`call_date`) is the centre's day, whatever the
machine running the night is set to. The centre's zone is callintel.yaml's `schedule.timezone` (the zone its
nightly run is scheduled in); without it, the machine's local zone.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.redact_meta import quoted


def future_problem(started: datetime, zone: str | None = None) -> str | None:
    """Why a call's start (naive, in the centre's zone) cannot be right, or None. A call a year ahead (a typo, a
    recorder's clock) would be the store's newest day for years: the topic window and trends would follow it and
    leave every real call."""
    if started > local_now(zone) + timedelta(days=1):
        return "is in the future (more than a day ahead of the centre's clock); correct the date"
    return None


def centre_zone(zone: str | None) -> ZoneInfo | None:
    """The centre's zone (callintel.yaml schedule.timezone, checked when the config is read); None: the machine's."""
    return ZoneInfo(zone) if zone else None


def local_now(zone: str | None = None) -> datetime:
    return datetime.now(centre_zone(zone)).replace(tzinfo=None)


def local_time(epoch_s: float, zone: str | None = None) -> datetime:
    """A file's time as the centre's clock reads it (naive)."""
    return datetime.fromtimestamp(epoch_s, centre_zone(zone)).replace(tzinfo=None)


# said with every timestamp refused: a spreadsheet's "11/20/2026 9:14" is the usual one, and which of 11 and 20 is
# the month cannot be told in general
ISO_FORM = ("is not an ISO-8601 timestamp (write it as 2026-11-20T09:14:00: year first, two digits for the month, "
            "day, hour and minute)")


def parse_timestamp(value: str, zone: str | None = None, form: str | None = None) -> datetime:
    """ISO-8601 (or the strptime format `form`) -> naive time in the centre's zone (contact centres reason in their
    own clock, and a call's day is the centre's day). A time without an offset is the centre's clock already; one
    with an offset or Z is converted to `zone`, or to the machine's local zone when none is configured."""
    ts = datetime.strptime(value.strip(), form) if form else datetime.fromisoformat(value.strip())
    try:
        return ts.astimezone(centre_zone(zone)).replace(tzinfo=None) if ts.tzinfo else ts
    except OverflowError:  # "9999-12-31T23:59:59-05:00" has no local time; callers expect ValueError
        raise ValueError(f"{quoted(value)} is out of range") from None
