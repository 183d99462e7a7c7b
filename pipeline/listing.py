"""Listing an input folder without walking the whole archive every night.

Recording systems add a folder a day and never touch it again, while the input folder keeps every day it
ever held: listing it all, and looking up each file against the stored calls, made a night's cost grow with
the archive (~10 us a file). So a folder whose every call file was a stored call's, unchanged, is *settled*:
the store remembers it with its modification time (`Settled`, in the manifest's meta, committed with the
night), and later nights skip it (counted as found and skipped, as before) until that time changes.

A folder's time changes whenever a file in it is created, removed or renamed into it, which is how
recorders and copy tools deliver a file. What it does not show is a file rewritten in place: for a settled
folder that would be a stored call's file, which is never stored again anyway (only the run's "changed
since it was stored" note is lost). Only leaf folders settle (a folder's time does not change with its
subfolders' files), never one holding a symbolic link (its target may change) or a file that was not a
stored call's (new, broken, skipped; a recording of a call stored from another file counts as its), and
never one changed within SETTLE_NS of being listed: a file added in the same clock tick as the change before
the listing would leave its time as it was.
"""
from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SETTLE_NS = 2_000_000_000  # a folder changed more recently than this when listed is listed again next night
META_KEY = "settled_folders"


@dataclass
class Leaf:
    """A folder without subfolders, as listed: its time, and the files in it that were wanted."""
    mtime_ns: int
    files: list[str] = field(default_factory=list)  # paths relative to the input folder
    links: bool = False


class Settled:
    """The settled folders of one input folder: those of the last night, and those of this night's listing.

    record: what `record()` gave last night (the store's meta), ignored if it was of another folder.
    """

    def __init__(self, folder: Path, record: dict | None):
        self.root, record = str(folder.resolve()), record or {}
        # rel folder -> [its mtime_ns, its call files], as last night left them, and as this night finds them
        self.before: dict[str, list[int]] = record.get("folders", {}) if record.get("root") == self.root else {}
        self.now: dict[str, list[int]] = {}

    def unchanged(self, rel_dir: str, mtime_ns: int) -> int | None:
        """The number of call files in a settled folder that has not changed since (kept settled), else None."""
        was = self.before.get(rel_dir)
        if was is None or was[0] != mtime_ns:
            return None
        self.now[rel_dir] = was
        return was[1]

    def settle(self, leaves: dict[str, Leaf], stored: set[str]) -> None:
        """Settle the listed leaf folders whose every wanted file is in `stored` (rels of stored calls' files)."""
        for rel_dir, leaf in leaves.items():
            if leaf.files and not leaf.links and all(rel in stored for rel in leaf.files):
                self.now[rel_dir] = [leaf.mtime_ns, len(leaf.files)]

    def record(self) -> dict:
        return {"root": self.root, "folders": dict(sorted(self.now.items()))}


def unsettled(record: dict | None, files: list[str]) -> dict:
    """The settled folders of each input folder (the store's meta) without those holding these files (relative
    to their input folder): the next night lists them again, so it says what became of the files. Forgetting a
    call calls for it: its recording, if still there, gets the night's "not stored again" note."""
    folders = {posixpath.dirname(rel) for rel in files}
    return {name: {**was, "folders": {rel_dir: v for rel_dir, v in was.get("folders", {}).items()
                                      if rel_dir not in folders}}
            for name, was in (record or {}).items()}


def _inside(out: Path | None, folder: Path) -> tuple[str, ...] | None:
    """The parts of out's path below folder, when out is inside it."""
    if out is None:
        return None
    out, folder = Path(out).resolve(), folder.resolve()
    return out.relative_to(folder).parts if out != folder and out.is_relative_to(folder) else None


@dataclass
class Listing:
    files: list[tuple[str, str, bool]]  # (path, path relative to the folder, is a symbolic link), in path order
    unchanged: int = 0                  # call files in settled folders, not listed again
    kept: set[str] = field(default_factory=set)  # those folders (relative to the folder listed)
    leaves: dict[str, Leaf] = field(default_factory=dict)  # leaf folders listed that may settle


def list_files(folder: Path, wanted: Callable[[str], bool], settled: Settled | None = None,
               hidden: bool = True, out: Path | None = None) -> Listing:
    """The wanted files under folder (by name), with one `scandir` per folder listed and no path objects.

    Like `Path.rglob`: linked folders are not entered. hidden=False leaves out names starting with a dot
    (files and folders). Settled folders that have not changed are not listed (see the module's docstring),
    nor is the output folder `out`, if it is inside: its run files, transcripts and redacted copies of
    recordings would be read as new calls every night.
    """
    listing, found, stack = Listing([]), [], [(os.fspath(folder), ())]
    skip = _inside(out, folder)
    now = time.time_ns()
    while stack:
        directory, parts = stack.pop()
        rel_dir = "/".join(parts)
        mtime_ns = os.stat(directory).st_mtime_ns if settled is not None and parts else None
        if mtime_ns is not None and (count := settled.unchanged(rel_dir, mtime_ns)) is not None:
            listing.unchanged += count
            listing.kept.add(rel_dir)
            continue
        leaf, subfolders = Leaf(mtime_ns or 0), False
        with os.scandir(directory) as entries:
            for entry in entries:
                if not hidden and entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if (*parts, entry.name) == skip:
                        continue
                    stack.append((entry.path, (*parts, entry.name)))
                    subfolders = True
                elif wanted(entry.name) and entry.is_file():
                    found.append(((*parts, entry.name), entry.path, entry.is_symlink()))
                    leaf.files.append("/".join(found[-1][0]))
                    leaf.links |= found[-1][2]
        if mtime_ns is not None and not subfolders and now - mtime_ns > SETTLE_NS:
            listing.leaves[rel_dir] = leaf
    found.sort()
    listing.files = [(path, "/".join(parts), is_link) for parts, path, is_link in found]
    return listing
