"""A call's start and day are the centre's (callintel.yaml schedule.timezone), whatever zone the machine is in.

The expected times are worked out by hand from the written timestamps: 02:30Z on 20 November is 20:30 on
19 November in Chicago (UTC-6 in winter), and the day DST begins there (8 March 2026, 02:00 CST = 08:00Z)
an hour later is read as 03:30 CDT.
"""
import json
import os
import shutil
from datetime import date, datetime

import pandas as pd
import pytest
import yaml

from conftest import JFK, ROOT, write_wav
from pipeline.centre_time import parse_timestamp
from pipeline.ingest import plan_recordings
from pipeline.metadata import read_metadata
from pipeline.store import Store
from pipeline.transcripts import Reading, load_transcript

CHICAGO = "America/Chicago"


@pytest.mark.parametrize("written, expected", [
    ("2026-11-20T02:30:00Z", datetime(2026, 11, 19, 20, 30)),
    ("2026-11-20T02:30:00+00:00", datetime(2026, 11, 19, 20, 30)),
    ("2026-11-19T21:30:00-05:00", datetime(2026, 11, 19, 20, 30)),   # written in New York
    ("2026-03-08T07:30:00Z", datetime(2026, 3, 8, 1, 30)),             # CST, before the change
    ("2026-03-08T08:30:00Z", datetime(2026, 3, 8, 3, 30)),             # CDT: the zone's rules, not a fixed offset
    ("2026-11-19T20:30:00", datetime(2026, 11, 19, 20, 30)),           # no offset: the centre's clock already
])
def test_a_timestamp_is_read_on_the_centres_clock(written, expected):
    assert parse_timestamp(written, CHICAGO) == expected


def _transcript(folder, name, started_at):
    doc = json.loads((ROOT / "data/demo_transcripts/c-0001.json").read_text())
    doc.update(call_id=name, started_at=started_at)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path, doc


def test_a_transcripts_day_is_the_centres_day(tmp_path):
    path, _ = _transcript(tmp_path, "evening", "2026-11-20T02:30:00Z")
    got = load_transcript(path, path.name, Reading(CHICAGO))
    assert got.call["started_at"] == datetime(2026, 11, 19, 20, 30)
    assert got.call["call_date"] == date(2026, 11, 19)
    assert {u["call_date"] for u in got.utterances} == {date(2026, 11, 19)}


def test_a_csv_transcripts_day_is_the_centres_day(tmp_path):
    (tmp_path / "late.csv").write_text("call_id,started_at,speaker,start_s,end_s,text\n"
                                       "late,2026-11-20T05:59:00Z,agent,0,2,hello\n"
                                       "late,2026-11-20T05:59:00Z,customer,2,4,hi there\n")
    got = load_transcript(tmp_path / "late.csv", "late.csv", Reading(CHICAGO))
    assert (got.call["started_at"], got.call["call_date"]) == (datetime(2026, 11, 19, 23, 59), date(2026, 11, 19))


def test_a_recordings_metadata_time_and_file_time_are_read_on_the_centres_clock(tmp_path):
    shutil.copy(JFK, tmp_path / "tagged.flac")
    write_wav(tmp_path / "untagged.wav", JFK, rate=8000, channels=1)  # other audio: a copy would be the same call
    pd.DataFrame({"file": ["tagged.flac"], "started_at": ["2026-11-20T02:30:00Z"]}).to_csv(
        tmp_path / "metadata.csv", index=False)
    metadata = read_metadata(tmp_path, CHICAGO)
    assert metadata.failures == []
    assert metadata.rows[(tmp_path / "tagged.flac").resolve()]["started_at"] == datetime(2026, 11, 19, 20, 30)
    # a recording without a time in metadata starts when its file was last written, on the centre's clock
    written = datetime.fromisoformat("2026-11-20T03:15:00+00:00").timestamp()
    os.utime(tmp_path / "untagged.wav", (written, written))
    nothing = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})
    plan = plan_recordings(tmp_path, nothing, "left", zone=CHICAGO)
    started = {job.source_path: (job.started_at, job.call_date) for job in plan.jobs}
    assert started == {"tagged.flac": (datetime(2026, 11, 19, 20, 30), date(2026, 11, 19)),
                       "untagged.wav": (datetime(2026, 11, 19, 21, 15), date(2026, 11, 19))}


def test_a_night_on_two_workers_reads_transcripts_as_the_centre_configured(tmp_path, prefect_harness):
    """The zone and the speakers' names reach the pool's workers, which read the transcripts: the stored days
    and the pages' folders are Chicago's, and an export's spk_0/spk_1 are the agent and the customer."""
    import flows

    tx = tmp_path / "tx"
    tx.mkdir()
    _, said = _transcript(tx, "evening", "2026-11-20T02:30:00Z")      # 20:30 on the 19th in Chicago
    _, doc = _transcript(tx, "morning", "2026-11-20T15:00:00+00:00")  # 09:00 on the 20th
    for turn in doc["utterances"]:
        turn["speaker"] = {"agent": "SPK_0", "customer": "spk_1"}[turn["speaker"]]
    (tx / "morning.json").write_text(json.dumps(doc))
    config = tmp_path / "callintel.yaml"
    config.write_text(yaml.safe_dump({"input": str(tmp_path / "none"), "transcripts": str(tx),
                                      "out": str(tmp_path / "out"), "signals": str(ROOT / "signals"),
                                      "import_commit_every": 1, "runner": {"workers": 2},
                                      "schedule": {"timezone": CHICAGO},
                                      "transcript_speakers": {"spk_0": "agent", "SPK_1": "customer"}}))
    summary = flows.run_nightly(config=str(config), progress=False)
    assert summary["counts"]["imported"] == 2
    with Store(tmp_path / "out").connect_read_only() as con:
        calls = con.execute("SELECT call_id, started_at, call_date FROM calls ORDER BY call_id").fetchall()
        days = con.execute("SELECT DISTINCT call_id, call_date FROM utterances ORDER BY call_id").fetchall()
        speakers = con.execute("SELECT speaker FROM utterances WHERE call_id = 'morning' ORDER BY utt_idx").fetchall()
    assert calls == [("evening", datetime(2026, 11, 19, 20, 30), date(2026, 11, 19)),
                     ("morning", datetime(2026, 11, 20, 9, 0), date(2026, 11, 20))]
    assert days == [("evening", date(2026, 11, 19)), ("morning", date(2026, 11, 20))]
    assert [s for (s,) in speakers] == [turn["speaker"] for turn in sorted(
        said["utterances"], key=lambda t: (t["start_s"], t["end_s"]))]  # the same turns as written with our names
    assert (tmp_path / "out/scorecards/2026-11-19/evening.html").is_file()
    assert (tmp_path / "out/scorecards/2026-11-20/morning.html").is_file()
