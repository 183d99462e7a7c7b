"""The HTML half of the store's files: one scorecard page per call, written in groups.

Part of the store (with pipeline/store.py): pages live under `<out>/scorecards/<call_date>/<call_id>.html`.
Like every other write of the store they are atomic and durable, but a night writes a page per call, so a
group of pages is written under `scorecards/.incoming/`, flushed to disk together (one syncfs instead of an
fsync each: 4x faster), then each renamed into place. A killed run leaves only `.incoming/`, which the next
writer removes (Store._recover).
"""
from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path

PAGES_PER_FLUSH = 1000  # HTML scorecards written, flushed to disk together, then renamed into place
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


class PagesMixin:
    """Page files of a Store (needs self.out, self.manifest(), self.read() and self._require_lock())."""

    def page_path(self, call: dict) -> Path:
        return self.out / "scorecards" / call["call_date"].isoformat() / f"{call['call_id']}.html"

    @property
    def _incoming_pages(self) -> Path:
        return self.out / "scorecards" / ".incoming"

    def write_pages(self, pages: Iterable[tuple[dict, bytes]]) -> dict[str, OSError]:
        """Write HTML scorecards, (call, UTF-8 html) each; returns call_id -> error for those not written.

        PAGES_PER_FLUSH pages at a time are written under .incoming/, flushed to disk together and renamed
        over their pages (see the module's docstring).
        """
        self._require_lock()
        failed: dict[str, OSError] = {}
        pages = iter(pages)
        while group := list(itertools.islice(pages, PAGES_PER_FLUSH)):
            failed |= self._write_page_group(group)
        return failed

    def _write_page_group(self, pages: list[tuple[dict, bytes]]) -> dict[str, OSError]:
        failed, staged = {}, []
        self._incoming_pages.mkdir(parents=True, exist_ok=True)
        for call, html in pages:
            path, tmp = self.page_path(call), self._incoming_pages / f"{call['call_id']}.html.tmp"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(html)
                staged.append((call["call_id"], tmp, path))
            except OSError as exc:
                failed[call["call_id"]] = exc
        try:
            _flush_to_disk(self._incoming_pages)
        except OSError as exc:
            return failed | {call_id: exc for call_id, _, _ in staged}
        for call_id, tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                failed[call_id] = exc
        with contextlib.suppress(OSError):  # left when a page could not be moved: the next writer removes it
            self._incoming_pages.rmdir()
        return failed

    def calls_without_page(self) -> dict[str, date]:
        """Scored calls whose HTML scorecard is missing (a run killed after its commit, or a deleted file)."""
        if not self.manifest()["scorecards"]:
            return {}
        cards = self.read("scorecards", ["call_id", "call_date"]).to_pylist()
        return {c["call_id"]: c["call_date"] for c in cards if not self.page_path(c).exists()}
