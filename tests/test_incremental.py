"""A night costs O(its own calls): a no-op night reads no archive table but the calls list, a night with
one new call reads only that call's day, and each night's many small commits end as one file per day."""
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, demo_transcripts_folder
from pipeline.schemas import TABLES
from pipeline.store import Store

CALLS = sorted(p.stem for p in (ROOT / "data/demo_transcripts").glob("c-*.json"))


def night(tmp_path: Path, prefect_harness):
    import flows

    return flows.nightly(config=str(tmp_path / "callintel.yaml"))


@pytest.fixture
def folder(tmp_path):
    return demo_transcripts_folder(tmp_path, CALLS[:-1], "commit_every: 1\nimport_commit_every: 1\n")


def started_day(call_id: str) -> str:
    return json.loads((ROOT / f"data/demo_transcripts/{call_id}.json").read_text())["started_at"][:10]


@pytest.fixture
def reads(monkeypatch):
    """(table, days) of every Store.read, days None when the read was not limited to some days."""
    seen, read = [], Store.read

    def recorded(self, table, columns=None, since=None, days=None):
        seen.append((table, None if days is None else sorted(d.isoformat() for d in days)))
        return read(self, table, columns, since, days)

    monkeypatch.setattr(Store, "read", recorded)
    return seen


def test_each_night_leaves_one_part_per_table_and_day(folder, prefect_harness):
    first = night(folder, prefect_harness)
    assert first["counts"]["imported"] == len(CALLS) - 1
    store = Store(folder / "out")
    days = {started_day(c) for c in CALLS[:-1]}
    for name, parts in store.manifest().items():
        if TABLES[name].partitioned and parts:
            per_day = Counter(p.split("/")[0] for p in parts)
            assert max(per_day.values()) == 1, (name, per_day)
            assert set(per_day) <= {f"call_date={d}" for d in days}
    assert len(store.read("calls")) == len(CALLS) - 1
    assert sorted(store.read("scorecards").column("call_id").to_pylist()) == CALLS[:-1]
    on_disk = {str(p.relative_to(store.parquet / "utterances")) for p in (store.parquet / "utterances").rglob("*.parquet")}
    assert on_disk == set(store.manifest()["utterances"])


def test_a_night_reads_only_what_its_new_calls_need(folder, prefect_harness, reads, monkeypatch):
    from pipeline import transcripts

    night(folder, prefect_harness)
    pages = sorted((folder / "out/scorecards").rglob("*.html"))
    written = {p: p.stat().st_mtime_ns for p in pages}
    reads.clear()
    parsed, load = [], transcripts.load_transcript
    monkeypatch.setattr(transcripts, "load_transcript", lambda *args: parsed.append(args[1]) or load(*args))
    noop = night(folder, prefect_harness)
    assert (noop["counts"]["imported"], noop["counts"]["skipped"]) == (0, len(CALLS) - 1)
    assert parsed == []  # stored transcript files are known by path, size and time: not one is read again
    # the calls list (which files are stored already) is all a night with nothing new reads
    assert {table for table, _ in reads} == {"calls"}
    assert {p: p.stat().st_mtime_ns for p in pages} == written

    new = CALLS[-1]
    shutil.copy(ROOT / f"data/demo_transcripts/{new}.json", folder / "tx")
    reads.clear()
    one = night(folder, prefect_harness)
    assert one["counts"]["imported"] == 1
    assert (folder / f"out/scorecards/{started_day(new)}/{new}.html").exists()
    # its page is rendered with the call, from the rows being stored: no table is read back for it, and nothing
    # reads a whole archive table except the calls list
    assert {table for table, _ in reads} == {"calls"}
    assert {p: p.stat().st_mtime_ns for p in pages} == written


def test_a_night_lists_only_day_folders_that_changed(tmp_path, prefect_harness, monkeypatch):
    """Once a day folder's calls are all stored (and it has not changed since), later nights do not list it:
    the night's listing costs the folders that changed, not every file the archive ever held. A call delivered
    late into such a folder changes it, and is stored."""
    import os
    import time

    from pipeline import listing

    late = "c-0008"  # of 2026-11-17, beside c-0007
    folder = demo_transcripts_folder(tmp_path, [], "")
    for call_id in CALLS:
        if call_id != late:
            (folder / "tx" / started_day(call_id)).mkdir(exist_ok=True)
            shutil.copy(ROOT / f"data/demo_transcripts/{call_id}.json", folder / "tx" / started_day(call_id))
    assert night(folder, prefect_harness)["counts"]["imported"] == len(CALLS) - 1
    hour_ago = time.time_ns() - 3600 * 10**9
    days = sorted(p for p in (folder / "tx").iterdir())
    for day in days:  # delivered yesterday
        os.utime(day, ns=(hour_ago, hour_ago))
    night(folder, prefect_harness)  # finds every folder's calls stored: settles them
    assert sorted(Store(folder / "out").meta()[listing.META_KEY]["transcripts"]["folders"]) == [d.name for d in days]

    scanned, scandir, tx = [], os.scandir, str(folder / "tx")

    def listed(path):
        if str(path).startswith(tx):
            scanned.append(str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", listed)
    quiet = night(folder, prefect_harness)
    assert scanned == [tx]  # the day folders are not listed...
    assert (quiet["counts"]["found"], quiet["counts"]["skipped"]) == (len(CALLS) - 1, len(CALLS) - 1)  # ...but counted

    shutil.copy(ROOT / f"data/demo_transcripts/{late}.json", folder / "tx" / started_day(late))
    scanned.clear()
    one = night(folder, prefect_harness)
    assert one["counts"]["imported"] == 1 and scanned == [tx, f"{tx}/{started_day(late)}"]
    assert sorted(Store(folder / "out").read("calls").column("call_id").to_pylist()) == CALLS
