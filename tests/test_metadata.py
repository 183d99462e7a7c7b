"""Metadata as recorders and spreadsheets write it: a file per day folder, `;` separated, a byte-order mark."""
import shutil
from datetime import datetime

import pandas as pd
import pytest

from conftest import JFK, write_wav
from pipeline.ingest import plan_recordings

NOTHING_KNOWN = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})


@pytest.fixture
def days(tmp_path):
    """Two day folders of a recorder, a recording each, and one at the top; every recording other audio."""
    for day, rate in (("2026-11-20", 8000), ("2026-11-21", 11025)):
        (tmp_path / day).mkdir()
        write_wav(tmp_path / day / "a.wav", JFK, rate=rate, channels=1)
    shutil.copy(JFK, tmp_path / "top.flac")
    return tmp_path


def _plan(folder):
    plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    return plan, {job.source_path: job for job in plan.jobs}, [f["error"] for f in plan.failures]


def test_each_day_folder_describes_its_own_recordings(days):
    (days / "metadata.csv").write_text("file,call_id,agent_id\ntop.flac,c-top,a_lee\n")
    (days / "2026-11-20" / "metadata.csv").write_text(
        "file,call_id,started_at,agent_id,queue\na.wav,c-20,2026-11-20T09:14:00,a_ruiz,billing\n")
    (days / "2026-11-21" / "metadata.csv").write_text(
        "file,call_id,started_at,agent_id,queue\na.wav,c-21,2026-11-21T16:02:00,a_chen,sales\n")
    plan, jobs, errors = _plan(days)
    assert errors == []
    got = {rel: (j.call_id, j.started_at, j.agent_id, j.queue) for rel, j in jobs.items()}
    assert got == {"2026-11-20/a.wav": ("c-20", datetime(2026, 11, 20, 9, 14), "a_ruiz", "billing"),
                   "2026-11-21/a.wav": ("c-21", datetime(2026, 11, 21, 16, 2), "a_chen", "sales"),
                   "top.flac": ("c-top", jobs["top.flac"].started_at, "a_lee", None)}


def test_a_spreadsheets_csv_is_read_as_it_was_saved(days):
    """Excel in a language whose decimal mark is a comma: `;` between columns, a byte-order mark, names as typed."""
    (days / "metadata.csv").write_bytes(
        "\ufeffFile;Call_ID;Started_At;Agent_ID;Agent_Channel;Campaign\n"
        "top.flac;c-top;2026-11-20T10:00:00;a_lee;Right;spring sale\n".encode())
    plan, jobs, errors = _plan(days)
    top = jobs["top.flac"]
    assert errors == []
    assert (top.call_id, top.started_at, top.agent_id, top.agent_channel, top.extra) == (
        "c-top", datetime(2026, 11, 20, 10, 0), "a_lee", "right", {"Campaign": "spring sale"})


def test_columns_are_read_however_a_spreadsheet_names_them_and_a_misspelt_one_is_refused(days):
    """`Call ID`, `callid`, `Agent`, `Started`: ours. A name one slip from ours was kept as an extra field, so the
    call was stored without it (under a made-up id, for good, when it was the id)."""
    (days / "metadata.csv").write_text("File,callid,Agent,Started,Campaign\ntop.flac,c-top,a_lee,2026-11-20T10:00:00,"
                                       "spring\n")
    plan, jobs, errors = _plan(days)
    top = jobs["top.flac"]
    assert errors == [] and (top.call_id, top.agent_id, top.started_at, top.extra) == (
        "c-top", "a_lee", datetime(2026, 11, 20, 10, 0), {"Campaign": "spring"})
    (days / "metadata.csv").write_text("file,call_id,agent_chanel\ntop.flac,c-top,left\n")
    plan, jobs, errors = _plan(days)
    assert errors == ["metadata.csv: column 'agent_chanel' is not one callintel reads; did you mean 'agent_channel'? "
                      "(rename it: a column callintel does not read is kept in calls.extra, so a misspelt one is "
                      "refused)"]
    assert "top.flac" not in jobs  # waits for the fix, as a refused row's recording does
    (days / "metadata.csv").write_text("file,call_id,Call ID\ntop.flac,c-top,c-top\n")
    assert _plan(days)[2] == ["metadata.csv: columns 'call_id' and 'Call ID' are both read as 'call_id'; keep one"]


def test_a_recording_or_call_id_described_twice_is_refused_where_it_is_said_again(days):
    (days / "metadata.csv").write_text("file,call_id\n2026-11-20/a.wav,c-20\ntop.flac,c-top\n")
    (days / "2026-11-20" / "metadata.csv").write_text("file,call_id\na.wav,c-other\n")
    (days / "2026-11-21" / "metadata.csv").write_text("file,call_id\na.wav,c-top\n")
    plan, jobs, errors = _plan(days)
    assert errors == [
        "2026-11-20/metadata.csv line 2: file 'a.wav' already described (first in metadata.csv line 2)",
        "2026-11-21/metadata.csv line 2: duplicate call_id 'c-top' (first in metadata.csv line 3)",
    ]
    assert [f["source_path"] for f in plan.failures] == ["2026-11-20/a.wav", "2026-11-21/a.wav"]
    # the first description stands; a recording whose only row was refused waits for the fix, not a made-up id
    assert {rel: j.call_id for rel, j in jobs.items()} == {"2026-11-20/a.wav": "c-20", "top.flac": "c-top"}


def test_a_refused_rows_call_id_is_still_taken_by_it(days):
    """The first row of c-20 is refused (a typo), the second is fine: the second was stored as c-20, and once the
    typo was mended the first recording was 'already stored' - never stored, never reported."""
    (days / "metadata.csv").write_text("file,call_id,agent_channel\n2026-11-20/a.wav,c-20,rigth\n"
                                       "2026-11-21/a.wav,c-20,left\n")
    plan, jobs, errors = _plan(days)
    assert errors == ["metadata.csv line 2: agent_channel 'rigth' must be left, right or mono",
                      "metadata.csv line 3: duplicate call_id 'c-20' (first on line 2)"]
    assert [f["source_path"] for f in plan.failures] == ["2026-11-20/a.wav", "2026-11-21/a.wav"]
    assert "c-20" not in {j.call_id for j in jobs.values()}  # neither, until the file says which it is


def test_an_unreadable_day_file_holds_back_that_day_only(days):
    (days / "2026-11-20" / "metadata.csv").write_text("file,call_id\na.wav,c-20\n")
    (days / "2026-11-21" / "metadata.csv").write_bytes(b"name,started\nx,y\n")
    plan, jobs, errors = _plan(days)
    assert errors == ["2026-11-21/metadata.csv: no 'file' column; it names each recording (the columns: name, started)"]
    assert sorted(jobs) == ["2026-11-20/a.wav", "top.flac"] and plan.found == 3


def test_a_broken_csv_is_named_with_its_line(days):
    (days / "2026-11-21" / "metadata.csv").write_text('file,call_id\na.wav,"c-21\n')
    _, jobs, errors = _plan(days)
    assert errors == ['2026-11-21/metadata.csv: not valid CSV from line 2: unexpected end of data '
                      '(a quote that is never closed?)']
    assert "2026-11-21/a.wav" not in jobs


def test_a_hidden_folders_metadata_is_not_read(days):
    (days / ".old").mkdir()
    (days / ".old" / "metadata.csv").write_text("file,call_id\n../top.flac,c-hidden\n")
    _, jobs, errors = _plan(days)
    assert errors == [] and jobs["top.flac"].call_id != "c-hidden"


def test_a_row_whose_recording_was_removed_after_its_call_was_stored_is_no_failure(days):
    """A centre keeps recordings 90 days; their calls stay stored and their metadata.csv rows stay. Each such row
    was a failure ("file 'x' not found") every night. A row naming a missing file for a call never stored, or for a
    call stored from another file, still is one; a forgotten call's row is no failure either."""
    from pipeline.ingest import call_digest

    (days / "2026-11-20" / "metadata.csv").write_text(
        "file,call_id\nold.wav,c-old\nforgot.wav,c-forgot\nnever.wav,c-never\na.wav,c-a\n")
    (days / "2026-11-21" / "metadata.csv").write_text("file,agent_id\nold-too.wav,a_lee\na.wav,a_lee\n")
    known = pd.DataFrame({"call_id": ["c-old", "4d2f00aa11bb22cc"], "source_path": ["2026-11-20/old.wav",
                                                                                    "2026-11-21/old-too.wav"],
                          "file_size": [10, 10], "file_mtime": [1.0, 1.0]})
    plan = plan_recordings(days, known, "left", forgotten={call_digest("c-forgot")})
    assert [f["error"] for f in plan.failures] == ["2026-11-20/metadata.csv line 4: file 'never.wav' not found"]
    assert sorted(job.call_id for job in plan.jobs if job.source_path.startswith("2026-11-20")) == ["c-a"]


def test_a_row_written_on_windows_names_its_recording_and_a_misspelt_one_holds_back_the_unnamed(days):
    """A Windows recorder writes `sub\\a.wav` and `A.WAV`: both name their recordings. A row whose file is
    misspelt (`b2.wav` for `b.wav`) let the recording it meant be stored for good under its audio's hash, with the
    file's time and no agent; it now waits beside the failure, named, until a row describes it."""
    day = days / "2026-11-20"
    (day / "sub").mkdir()
    write_wav(day / "sub" / "a.wav", JFK, rate=8000, channels=1, offset_s=0.5)
    write_wav(day / "b.wav", JFK, rate=8000, channels=1, offset_s=1.0)
    (day / "metadata.csv").write_text("file,call_id,agent_id\r\nsub\\a.wav,c-sub,a_lee\r\nA.WAV,c-a,a_lee\r\n"
                                      "b2.wav,c-b,a_lee\r\n")
    plan, jobs, errors = _plan(days)
    assert {rel: j.call_id for rel, j in jobs.items() if rel.startswith("2026-11-20")} == {
        "2026-11-20/sub/a.wav": "c-sub", "2026-11-20/a.wav": "c-a"}
    assert errors == [
        "2026-11-20/metadata.csv line 4: file 'b2.wav' not found",
        "2026-11-20/b.wav: no row of 2026-11-20/metadata.csv describes it, while its row for 'b2.wav' names a file "
        "that is not there; if that row means this recording, correct its file name (the recording waits until a "
        "row describes it)"]
    (day / "metadata.csv").write_text("file,call_id,agent_id\nsub/a.wav,c-sub,a_lee\na.wav,c-a,a_lee\n"
                                      "b.wav,c-b,a_lee\n")
    plan, jobs, errors = _plan(days)
    assert errors == [] and jobs["2026-11-20/b.wav"].call_id == "c-b"


def test_a_metadata_csv_saved_by_excel_on_windows_is_read(days):
    """Excel's "CSV" is Windows-1252: it was refused ("not UTF-8"), and every recording of its day waited."""
    (days / "2026-11-20" / "metadata.csv").write_bytes("file,call_id,agent_id\na.wav,c-20,Jos\xe9\n".encode("cp1252"))
    plan, jobs, errors = _plan(days)
    assert errors == [] and (jobs["2026-11-20/a.wav"].call_id, jobs["2026-11-20/a.wav"].agent_id) == ("c-20", "Jos\xe9")
