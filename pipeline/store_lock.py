"""One writer at a time: the store's lock on `<out>/.lock` (part of the store, with pipeline/store.py).

An flock, so it is let go when its holder dies however it dies; the file says who holds it. `callintel run`
reserves the folder before Prefect starts, so a second run is refused at once, not after Prefect's ~15 s
start-up and a traceback; the flow it runs then locks the folder again through that reservation.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from pipeline.store_db import StoreError


class StoreBusy(StoreError):
    pass


_RESERVED: dict[str, IO] = {}  # output folder (real path) -> its held .lock file, reserved by this process


class LockMixin:
    """Needs self.out, self._lock_fh (None when not held), self._recover() and self.refuse_newer() (see Store)."""

    @contextlib.contextmanager
    def lock(self, wait_s: float = 0) -> Iterator[None]:
        """Hold the output folder for writing; a second writer waits up to wait_s, then refuses."""
        with contextlib.ExitStack() as held:
            # reserved: this process's `callintel run` holds it already, for the flow now taking it
            fh = _RESERVED.get(os.path.realpath(self.out)) or held.enter_context(self._flock(wait_s))
            before, self._lock_fh = self._lock_fh, fh
            try:
                self._recover()
                yield
            finally:
                self._lock_fh = before

    @contextlib.contextmanager
    def reserve(self, wait_s: float = 0) -> Iterator[None]:
        """Hold the output folder for the flow this process is about to run, whose lock() then uses it."""
        key = os.path.realpath(self.out)
        with self._flock(wait_s) as fh:
            _RESERVED[key] = fh
            try:
                yield
            finally:
                del _RESERVED[key]

    def holder(self) -> str | None:
        """Who holds the output folder for writing ("pid 123, started ..."), or None when nobody does."""
        path = self.out / ".lock"
        if not path.exists():
            return None
        with open(path, "a+") as fh:
            if (holder := _try_lock(fh)) is None:
                fcntl.flock(fh, fcntl.LOCK_UN)
            return holder

    def busy(self, holder: str) -> StoreBusy:
        """The error of a writer finding the output folder held by another (`holder`, the lock file's text: which
        command, "forget: pid 123, started ...", or from an older release only "pid 123, ...")."""
        command, _, since = holder.partition(": ") if ": pid " in holder else ("run", "", holder)
        return StoreBusy(f"{self.out}: another callintel {command} is writing here ({since}); wait for it to finish, "
                         "use --wait SECONDS, or a different --out")

    def _require_lock(self) -> None:
        if self._lock_fh is None:
            raise RuntimeError("Store writes need `with store.lock():`")

    @contextlib.contextmanager
    def _flock(self, wait_s: float) -> Iterator[IO]:
        self.refuse_newer()
        self.out.mkdir(parents=True, exist_ok=True)
        fh = open(self.out / ".lock", "a+")
        deadline = time.monotonic() + wait_s
        while (holder := _try_lock(fh)) is not None:
            if time.monotonic() >= deadline:
                fh.close()
                raise self.busy(holder)
            time.sleep(0.5)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{_command()}: pid {os.getpid()}, started {datetime.now():%Y-%m-%d %H:%M:%S}")
        fh.flush()
        try:
            yield fh
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def _try_lock(fh) -> str | None:
    """Take the write lock on the open .lock file: None when taken, else who holds it (the file's text)."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        fh.seek(0)
        return fh.read().strip() or "another process"


def _command() -> str:
    """The callintel command holding the lock (forget, run), as the refused one is told; a flow served or run from
    Python is a run."""
    argv = sys.argv
    return argv[1] if len(argv) > 1 and os.path.basename(argv[0]) == "callintel" and argv[1].isalpha() else "run"
