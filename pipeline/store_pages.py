"""The HTML half of the store's files: one scorecard page per call, staged in groups, then put in place.

Part of the store (with pipeline/store.py): pages live under `<out>/scorecards/<call_date>/<call_id>.html`.
Like every other write of the store they are atomic and durable, but a night writes a page per call, so pages
are staged: a group is written into `scorecards/.incoming/`, flushed to disk together (one syncfs instead of an
fsync each: 4x faster), and each renamed into place once its call is committed.
Staging needs no lock, so a pool worker stages the pages it renders (`stage_pages`) and only their file names
cross to the committing process: the pages' bytes never pass through the one process every batch waits for.
A killed run leaves only `.incoming/`, which the next writer removes (Store._recover).
"""
from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import uuid
from collections.abc import Iterable
from datetime import date
from pathlib import Path

PAGES_PER_FLUSH = 1000  # HTML scorecards written, flushed to disk together, then renamed into place
INCOMING = ".incoming"  # under scorecards/: where pages are staged
try:
    _SYNCFS = ctypes.CDLL(None, use_errno=True).syncfs  # Linux: flush one file system, not every one
except (OSError, AttributeError):
    _SYNCFS = None


def _flush_to_disk(folder: Path) -> None:
    """Everything written so far on folder's file system safely on disk (what fsync does for one file)."""
    if _SYNCFS is None:
        os.sync()
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{folder}: could not flush to disk ({os.strerror(errno)})")
    finally:
        os.close(fd)


def stage_pages(incoming: Path, pages: Iterable[tuple[str, bytes]]) -> tuple[dict[str, Path], dict[str, OSError]]:
    """Write pages (call_id, UTF-8 html) into `incoming` and flush them to disk together.

    Returns (call_id -> staged file, call_id -> why not staged). Store.write_pages puts staged files in place.
    The files are named apart by a token of this call, so stagers never meet, and all in the one folder: on
    ext4 a file made in a new folder costs 4x one made in a folder that has many already.
    """
    staged, failed = {}, {}
    pages = list(pages)
    token = uuid.uuid4().hex
    try:
        incoming.mkdir(parents=True, exist_ok=True)
        folder = os.open(incoming, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        return {}, {call_id: exc for call_id, _ in pages}
    try:
        for call_id, html in pages:
            name = f"{token}-{call_id}.html"
            try:
                _write_new(folder, name, html)
                staged[call_id] = incoming / name
            except OSError as exc:
                failed[call_id] = exc
    finally:
        os.close(folder)
    try:
        _flush_to_disk(incoming)
    except OSError as exc:
        return {}, failed | {call_id: exc for call_id in staged}
    return staged, failed


def _write_new(folder: int, name: str, data: bytes) -> None:
    """data as the file `name` in an open folder: what open(path, "wb").write(data) does, without a buffered
    file object and the walk of the whole path, which were 5 of the 32 us a page's file took."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666, dir_fd=folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


class PagesMixin:
    """Page files of a Store (needs self.out, self.manifest(), self.read() and self._require_lock())."""

    def page_path(self, call: dict) -> Path:
        return self.out / "scorecards" / call["call_date"].isoformat() / f"{call['call_id']}.html"

    @property
    def incoming_pages(self) -> Path:
        return self.out / "scorecards" / INCOMING

    def write_pages(self, pages: Iterable[tuple[dict, bytes | Path]]) -> dict[str, OSError]:
        """Put HTML scorecards in place: (call, UTF-8 html or the file stage_pages staged it in) each. Returns
        call_id -> error for those not written.

        PAGES_PER_FLUSH pages at a time: those given as bytes are staged together, then all are renamed over
        their pages (see the module's docstring).
        """
        self._require_lock()
        failed: dict[str, OSError] = {}
        pages = iter(pages)
        while group := list(itertools.islice(pages, PAGES_PER_FLUSH)):
            failed |= self._write_page_group(group)
        return failed

    def _write_page_group(self, pages: list[tuple[dict, bytes | Path]]) -> dict[str, OSError]:
        fresh = [(call["call_id"], page) for call, page in pages if not isinstance(page, Path)]
        staged, failed = stage_pages(self.incoming_pages, fresh) if fresh else ({}, {})
        days = set()  # call_date of each folder made
        for call, page in pages:
            source = page if isinstance(page, Path) else staged.get(call["call_id"])
            if source is None:
                continue
            path = self.page_path(call)
            try:
                if call["call_date"] not in days:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    days.add(call["call_date"])
                os.replace(source, path)
            except OSError as exc:
                failed[call["call_id"]] = exc
                with contextlib.suppress(OSError):
                    source.unlink()
        if fresh:  # staged here, so no worker is staging: incoming/ may go (if empty, as it should be)
            with contextlib.suppress(OSError):
                self.incoming_pages.rmdir()
        return failed

    def remove_staged_pages(self) -> None:
        """Remove incoming/ once no worker stages pages any more, with what is left in it: pages of calls
        refused after they were staged (duplicates)."""
        self._require_lock()
        shutil.rmtree(self.incoming_pages, ignore_errors=True)

    def calls_with_day(self) -> dict[str, date]:
        """Every stored call_id with its call_date (where its page is)."""
        if not self.manifest()["calls"]:
            return {}
        calls = self.read("calls", ["call_id", "call_date"])
        return dict(zip(calls.column("call_id").to_pylist(), calls.column("call_date").to_pylist()))

    def calls_without_page(self) -> dict[str, date]:
        """Stored calls whose HTML scorecard is missing (a run killed after its commit, or a deleted file)."""
        return {call_id: day for call_id, day in self.calls_with_day().items()
                if not self.page_path({"call_id": call_id, "call_date": day}).exists()}
