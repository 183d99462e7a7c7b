"""Progress of the night's long steps: a bar at a terminal, a whole line now and then in a log.

A nightly run under cron or systemd writes to a file, where tqdm hides itself (or would leave a line
of carriage returns); the operator reading that log at 3 a.m. should still see how far the night got
and how long it has left. `progress` is the flows' switch: None = decide by the terminal, True = a bar,
False = nothing (`callintel run --quiet`).

Example:
    >>> with bar(600, "s", "transcribing audio", None) as done:
    ...     done.update(120)
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm

LOG_EVERY_S = 60.0  # a line a minute: enough to see a night move, few enough to read


def bar(total: float, unit: str, desc: str, progress: bool | None):
    """Something with update(n) and close(), usable with `with`: a tqdm bar, log lines or nothing."""
    if progress is False:
        return tqdm(total=total, disable=True)
    if progress or sys.stderr.isatty():
        return tqdm(total=total, unit=unit, desc=desc)
    return LogLines(total, unit, desc)


def tracked(items: Iterable, total: float, unit: str, desc: str, progress: bool | None) -> Iterator:
    """items, one unit each, with their progress shown as `bar` shows it."""
    with bar(total, unit, desc, progress) as done:
        for item in items:
            yield item
            done.update(1)


class LogLines:
    """Progress as whole lines on stderr: one every `every` seconds while it moves, and one at the end."""

    def __init__(self, total: float, unit: str, desc: str, every: float = LOG_EVERY_S):
        self.total, self.unit, self.desc, self.every = total, unit, desc, every
        self.n = self.said = 0.0  # done, and done when last said
        self.start = self.last = time.monotonic()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def close(self) -> None:
        if self.n != self.said:  # the end, unless the last line said it already
            self._line(time.monotonic())

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _line(self, now: float) -> None:
        self.said, elapsed, share = self.n, now - self.start, self.n / self.total if self.total else 1.0
        left = f", about {elapsed * (1 - share) / share / 60:.1f} min left" if 0 < share < 1 else ""
        units = self.unit if self.unit == "s" else f"{self.unit}s"  # tqdm's unit is per item: "file/s"
        # in a flow, Prefect's log_prints makes this a log record of the flow run, with its time
        print(f"{self.desc}: {self.n:,.0f} of {self.total:,.0f} {units} ({share:.0%}) in {elapsed / 60:.1f} min"
              f"{left}", file=sys.stderr, flush=True)
