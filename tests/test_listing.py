"""Settled folders: a day folder whose every transcript is a stored call's is not listed again until it changes,
so a night's listing costs its new folders, not the whole archive's files (pipeline/listing.py)."""
import json
import os
import time

from pipeline.listing import SETTLE_NS, Settled
from pipeline.transcripts import load_transcripts, new_files

HOUR_NS = 3600 * 10**9


def call(call_id: str, day: str) -> str:
    return json.dumps({"call_id": call_id, "started_at": f"{day}T09:14:00",
                       "utterances": [{"speaker": "agent", "start_s": 0.4, "end_s": 3.1,
                                       "text": "Thank you for calling."}]})


def day_folders(root, days: dict[str, list[str]]) -> None:
    for day, ids in days.items():
        (root / day).mkdir(parents=True, exist_ok=True)
        for call_id in ids:
            (root / day / f"{call_id}.json").write_text(call(call_id, day if day[:2] == "20" else "2026-11-20"))


def age(folder, ns: int = HOUR_NS) -> int:
    """Set a folder's time ns back (as last night's delivery would be by the next night); returns it."""
    then = time.time_ns() - ns
    os.utime(folder, ns=(then, then))
    return then


def stored_files(root) -> set:
    return {(c.call["source_path"], c.call["file_size"], c.call["file_mtime"])
            for c in load_transcripts(root, set())[0]}


def test_a_settled_folder_is_skipped_until_a_file_is_added_to_it(tmp_path):
    day_folders(tmp_path, {"2026-11-20": ["c-1", "c-2"], "2026-11-21": ["c-3"]})
    stored = stored_files(tmp_path)
    times = {day: age(tmp_path / day) for day in ("2026-11-20", "2026-11-21")}

    first = Settled(tmp_path, None)
    assert new_files(tmp_path, stored, first) == ([], 3, 3, [])
    assert first.record() == {"root": str(tmp_path.resolve()), "folders": {
        "2026-11-20": [times["2026-11-20"], 2], "2026-11-21": [times["2026-11-21"], 1]}}

    # rewritten in place, a file leaves its folder's time as it was: the folder is not listed, so it is not seen
    (tmp_path / "2026-11-20" / "c-1.json").write_text("{")
    os.utime(tmp_path / "2026-11-20", ns=(times["2026-11-20"],) * 2)
    second = Settled(tmp_path, first.record())
    assert new_files(tmp_path, stored, second) == ([], 3, 3, [])  # found and skipped as if listed
    assert second.record() == first.record()

    (tmp_path / "2026-11-20" / "c-4.json").write_text(call("c-4", "2026-11-20"))  # a late delivery
    third = Settled(tmp_path, second.record())
    files, found, skipped, failures = new_files(tmp_path, stored, third)
    assert [rel for _, rel in files] == ["2026-11-20/c-1.json", "2026-11-20/c-4.json"]
    assert (found, skipped, failures) == (4, 2, [])
    assert third.record()["folders"] == {"2026-11-21": [times["2026-11-21"], 1]}  # 2026-11-20 holds new files


def test_only_a_quiet_leaf_folder_of_stored_plain_files_settles(tmp_path):
    day_folders(tmp_path, {"stored": ["c-1"], "broken": ["c-2"], "recent": ["c-3"], "parent": ["c-4"],
                           "parent/child": ["c-5"], "linked": ["c-6"]})
    stored = stored_files(tmp_path)
    (tmp_path / "broken" / "c-7.json").write_text("{")
    os.symlink(tmp_path / "stored" / "c-1.json", tmp_path / "linked" / "c-1.json")
    stored |= {("linked/c-1.json", *next((size, mtime) for rel, size, mtime in stored if rel == "stored/c-1.json"))}
    for folder in ("stored", "broken", "parent", "parent/child", "linked"):
        age(tmp_path / folder)
    age(tmp_path / "recent", SETTLE_NS // 4)  # changed a moment ago: may yet be written to
    settled = Settled(tmp_path, None)
    files, found, skipped, _ = new_files(tmp_path, stored, settled)
    assert [rel for _, rel in files] == ["broken/c-7.json"] and (found, skipped) == (8, 7)
    assert sorted(settled.record()["folders"]) == ["parent/child", "stored"]


def test_a_record_of_another_folder_is_not_used(tmp_path):
    day_folders(tmp_path / "a", {"2026-11-20": ["c-1"]})
    age(tmp_path / "a" / "2026-11-20")
    stored = stored_files(tmp_path / "a")
    elsewhere = Settled(tmp_path / "a", None)
    new_files(tmp_path / "a", stored, elsewhere)
    day_folders(tmp_path / "b", {"2026-11-20": ["c-1"]})
    os.utime(tmp_path / "b" / "2026-11-20", ns=(elsewhere.record()["folders"]["2026-11-20"][0],) * 2)
    files, found, skipped, _ = new_files(tmp_path / "b", set(), Settled(tmp_path / "b", elsewhere.record()))
    assert [rel for _, rel in files] == ["2026-11-20/c-1.json"] and (found, skipped) == (1, 0)


def speech(path):
    from conftest import JFK, write_wav

    return write_wav(path, JFK, rate=8000, channels=1, offset_s=0.1 * (ord(path.name[0]) - ord("a")))


def recordings(root, days: dict[str, dict[str, str]]) -> None:
    """Day folders of recordings (one speech file, a recording's name setting its offset: distinct calls), each
    with a metadata.csv giving their call_ids."""
    for day, rows in days.items():
        (root / day).mkdir(exist_ok=True)
        for name in rows:
            if "/" not in name:
                speech(root / day / name)
        (root / day / "metadata.csv").write_text("file,call_id\n" + "".join(f"{f},{c}\n" for f, c in rows.items()))


def test_a_settled_recordings_folder_is_skipped_with_its_metadata(tmp_path, monkeypatch):
    import pandas as pd

    from pipeline import metadata
    from pipeline.ingest import plan_recordings

    recordings(tmp_path, {"2026-11-09": {"a.wav": "c-1"},
                          "2026-11-10": {"b.wav": "c-2", "../2026-11-11/c.wav": "c-3"}, "2026-11-11": {}})
    speech(tmp_path / "2026-11-11" / "c.wav")
    first = plan_recordings(tmp_path, pd.DataFrame(columns=["call_id", "source_path", "file_size", "file_mtime"]),
                            "left")
    assert sorted(j.call_id for j in first.jobs) == ["c-1", "c-2", "c-3"]
    known = pd.DataFrame([{"call_id": j.call_id, "source_path": j.source_path, "file_size": j.file_size,
                           "file_mtime": j.file_mtime} for j in first.jobs])
    times = {day: age(tmp_path / day) for day in ("2026-11-09", "2026-11-10", "2026-11-11")}

    settled = Settled(tmp_path, None)
    plan = plan_recordings(tmp_path, known, "left", settled=settled)
    assert (plan.jobs, plan.found, plan.skipped, plan.failures) == ([], 3, 3, [])
    # 2026-11-10's metadata names a recording in another folder: it is read while that one may come
    assert settled.record()["folders"] == {"2026-11-09": [times["2026-11-09"], 1],
                                           "2026-11-11": [times["2026-11-11"], 1]}

    (tmp_path / "2026-11-09" / "metadata.csv").write_text("not,a\nmetadata file")  # in place: not read again
    os.utime(tmp_path / "2026-11-09", ns=(times["2026-11-09"],) * 2)
    again, rows, row = Settled(tmp_path, settled.record()), [], metadata._row
    monkeypatch.setattr(metadata, "_row", lambda record, *args: rows.append(args[2]) or row(record, *args))
    plan = plan_recordings(tmp_path, known, "left", settled=again)
    assert (plan.jobs, plan.found, plan.skipped, plan.failures) == ([], 3, 3, [])
    assert rows == ["2026-11-10/metadata.csv line 2"]  # not line 3, of a recording in a settled folder
    monkeypatch.undo()

    recordings(tmp_path, {"2026-11-09": {"a.wav": "c-1", "d.wav": "c-4"}})  # a late call, and its row
    plan = plan_recordings(tmp_path, known, "left", settled=Settled(tmp_path, again.record()))
    assert [j.call_id for j in plan.jobs] == ["c-4"] and (plan.found, plan.skipped, plan.failures) == (4, 3, [])
