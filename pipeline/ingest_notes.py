"""What a night says of the input files it did not store: why each was skipped, in one line that names it."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd

if TYPE_CHECKING:
    from pipeline.ingest import CallJob


def stored_note(rel: str, meta: dict, stored_as: dict[str, str], unchanged: bool) -> list[str]:
    """What a run should say of a file it skips as stored: nothing, unless it no longer matches the stored call."""
    if meta.get("call_id") and stored_as.get(rel, meta["call_id"]) != meta["call_id"]:
        return [f"{rel}: metadata now names it {meta['call_id']}, but it was stored as {stored_as[rel]} on an "
                "earlier night, with that night's metadata; the stored call was kept"]
    if unchanged or rel not in stored_as:
        return []
    redo = "" if meta.get("call_id") else (f"; if that one is incomplete, `callintel forget --call-id "
                                           f"{stored_as[rel]} --yes` and the next run stores this file")
    return [changed_note(rel, stored_as[rel], redo)]


def stored_elsewhere_note(rel: str, call_id: str, known: pd.DataFrame) -> str:
    """A recording whose metadata names a call stored on an earlier night from another file (its transcript,
    most often, which a vendor delivered first): a stored call is never replaced, nor stored twice."""
    source = known.loc[known["call_id"] == call_id, "source_path"]
    where = f" from {source.iloc[0]}" if len(source) else ""
    return (f"{rel}: call {call_id} was stored{where} on an earlier night; that call was kept and this recording "
            "not used")


def changed_note(rel: str, call_id: str, redo: str = "") -> str:
    """The note on an input file at a stored call's path that changed since: a stored call is never replaced.
    redo says how to store the file anyway (recordings and transcripts differ)."""
    return (f"{rel}: changed since it was stored as call {call_id} on an earlier night (its size or time differ); "
            f"the stored call was kept{redo}")


def unread_notes(folder: Path, transcripts: Path | None, found: int, folder_named: bool = True) -> list[str]:
    """What a night that found nothing to read says: an unmounted share looks like an empty folder, and a centre
    that records thousands of calls a night did not record none. folder_named: the recordings folder was set (in
    callintel.yaml or an option), not the default a transcripts-only centre leaves alone."""
    missing = not folder.is_dir() and folder_named  # a default folder that is not there is no news every night
    notes = [f"input folder {folder} does not exist: no recordings were looked for"] if missing else []
    if found:
        return notes
    # an empty transcripts share beside a missing recordings folder is as empty a night as any
    read = [(kind, where) for kind, where in (("recordings", folder if folder.is_dir() else None),
                                              ("transcripts", transcripts)) if where is not None]
    if not read:
        return notes
    return notes + [f"no {' or '.join(kind for kind, _ in read)} at all in {' or '.join(str(w) for _, w in read)}: "
                    "if calls were expected, check that the folder is there and mounted"]


def forgotten_note(rel: str) -> str:
    """The note on an input file whose call was deleted on request: said every night it is still there."""
    return f"{rel}: deleted on request (callintel forget); not stored again"


def same_audio_stored(jobs: list[CallJob], stored_audio: Callable[[list[str]], dict[str, str]]
                      ) -> tuple[list[CallJob], list[CallJob], list[str]]:
    """(the jobs to transcribe, the jobs left out, a note for each left out): a recording whose file is a stored
    call's (the same file copied under another name, its metadata giving another call id) is that call, not a
    second one; stored twice, it would count twice in every trend and be scored twice. stored_audio: audio_sha256
    -> call_id of the stored calls holding any of these digests."""
    stored = stored_audio(sorted({job.audio_sha256 for job in jobs})) if jobs else {}
    keep = [job for job in jobs if job.audio_sha256 not in stored]
    left = [job for job in jobs if job.audio_sha256 in stored]
    return keep, left, [f"{job.source_path}: the same recording (byte for byte) as call "
                        f"{stored[job.audio_sha256]}, stored on an earlier night; not stored again as call "
                        f"{job.call_id}" for job in left]
