"""Recordings whose recorder writes no metadata.csv: call id, time and agent read from their names
(callintel.yaml `file_names`), a metadata.csv row winning value by value."""
import re
import shutil
from datetime import datetime

import pandas as pd
import pytest

from conftest import JFK, ROOT, write_wav
from pipeline.config import load_config
from pipeline.config_yaml import ConfigError
from pipeline.file_names import FileNames
from pipeline.ingest import plan_recordings
from pipeline.store import Store

NOTHING_KNOWN = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})
# a day folder, then time, agent, call id and the recorder's own station number in the name
PATTERN = r"(?P<started_at>\d{4}-\d{2}-\d{2}/\d{4})_(?P<agent_id>[a-z_]+)_(?P<call_id>c\d+)_st(?P<station>\d+)\."
FORMAT = "%Y-%m-%d/%H%M"


@pytest.fixture
def recorder(tmp_path):
    """What a recorder wrote over two days: every recording other audio (so no two hash to one id)."""
    names = ["2026-11-20/0914_a_ruiz_c1001_st4.wav", "2026-11-20/1402_a_chen_c1002_st7.wav",
             "2026-11-21/0930_a_ruiz_c1003_st4.wav"]
    for n, name in enumerate(names):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_wav(tmp_path / name, JFK, rate=8000, channels=1, offset_s=0.1 * n)
    return tmp_path


def _plan(folder, pattern=PATTERN, started_at_format=FORMAT, known=NOTHING_KNOWN):
    plan = plan_recordings(folder, known, "left", names=FileNames(re.compile(pattern), started_at_format))
    return plan, {job.source_path: job for job in plan.jobs}, [f["error"] for f in plan.failures]


def test_a_recordings_name_gives_its_call_id_time_agent_and_extra(recorder):
    plan, jobs, errors = _plan(recorder)
    assert errors == []
    got = {rel: (j.call_id, j.started_at, j.agent_id, j.extra) for rel, j in jobs.items()}
    assert got == {
        "2026-11-20/0914_a_ruiz_c1001_st4.wav": ("c1001", datetime(2026, 11, 20, 9, 14), "a_ruiz", {"station": "4"}),
        "2026-11-20/1402_a_chen_c1002_st7.wav": ("c1002", datetime(2026, 11, 20, 14, 2), "a_chen", {"station": "7"}),
        "2026-11-21/0930_a_ruiz_c1003_st4.wav": ("c1003", datetime(2026, 11, 21, 9, 30), "a_ruiz", {"station": "4"}),
    }


def test_a_metadata_row_wins_value_by_value(recorder):
    (recorder / "2026-11-20" / "metadata.csv").write_text(
        "file,agent_id,queue,station\n0914_a_ruiz_c1001_st4.wav,a_lee,billing,\n")
    _, jobs, errors = _plan(recorder)
    first = jobs["2026-11-20/0914_a_ruiz_c1001_st4.wav"]
    assert errors == []
    assert (first.call_id, first.started_at, first.agent_id, first.queue, first.extra) == (
        "c1001", datetime(2026, 11, 20, 9, 14), "a_lee", "billing", {"station": "4"})


def test_a_name_that_cannot_be_read_waits_unless_a_row_describes_it(recorder):
    shutil.copy(JFK, recorder / "2026-11-21" / "transfer.flac")
    write_wav(recorder / "2026-11-21" / "2399_a_lee_c1004_st1.wav", JFK, rate=16000, channels=1)
    plan, jobs, errors = _plan(recorder)
    assert errors == [
        "2026-11-21/2399_a_lee_c1004_st1.wav: in its name: started_at '2026-11-21/2399' does not match "
        "'%Y-%m-%d/%H%M'",
        "2026-11-21/transfer.flac: the name does not match file_names.pattern, so its call id and time cannot be "
        "read; not stored until it does (or a metadata.csv row describes it)",
    ]
    assert len(jobs) == 3 and plan.found == 5
    (recorder / "2026-11-21" / "metadata.csv").write_text("file,call_id,started_at\n"
                                                          "transfer.flac,c1005,2026-11-21T10:02:00\n")
    _, jobs, errors = _plan(recorder)
    assert [(j.call_id, j.started_at) for rel, j in jobs.items() if rel.endswith("transfer.flac")] == [
        ("c1005", datetime(2026, 11, 21, 10, 2))]
    assert len(errors) == 1  # the 23:99 one still waits


def test_a_stored_recording_is_not_read_again_whatever_its_name(recorder):
    """Calls stored before file_names was configured are not failures every night after."""
    first, _, _ = _plan(recorder, pattern=r"(?P<call_id>nothing matches this)")
    assert first.jobs == [] and len(first.failures) == 3
    stored = pd.DataFrame([{"call_id": f"h{n}", "source_path": str(p.relative_to(recorder)), "file_size":
                            p.stat().st_size, "file_mtime": p.stat().st_mtime}
                           for n, p in enumerate(sorted(recorder.rglob("*.wav")))])
    again, jobs, errors = _plan(recorder, pattern=r"(?P<call_id>nothing matches this)", known=stored)
    assert errors == [] and jobs == {} and again.skipped == 3


@pytest.mark.parametrize("setting, line, error", [
    ("  pattern: '(?P<call_id>[a-z'\n", 3, "file_names.pattern: not a regular expression (unterminated character set "
                                          "at position 12)"),
    ("  pattern: 'c\\d+'\n", 3, "file_names.pattern: names no group: write (?P<call_id>...) around each value a "
                                 "name holds"),
    ("  pattern: '(?P<call_id>c\\d+)'\n  started_at_format: '%H%M'\n", 4,
     "file_names.started_at_format: the pattern has no (?P<started_at>...) group for it to read"),
    # kept in calls.extra as any other group is, a misspelt one left every call under a made-up id for good
    ("  pattern: '(?P<callid>[a-z]+)\\.'\n", 3, "file_names.pattern: group 'callid' is not one callintel reads; "
                                               "did you mean (?P<call_id>...)?"),
    ("  pattern: '(?P<agent>[a-z]+)_(?P<queue>\\w+)\\.'\n", 3, "file_names.pattern: group 'agent' is not one "
                                                             "callintel reads; did you mean (?P<agent_id>...)?"),
    ("  pattern: '(?P<agent_id>[a-z]+)_(?P<queue>\\w+)\\.'\n", 3, "file_names.pattern: names neither a call_id nor a "
     "started_at group, so a recording's name tells nothing of its call"),
])
def test_a_pattern_that_cannot_work_is_refused_with_its_line(tmp_path, setting, line, error):
    (tmp_path / "callintel.yaml").write_text(f"signals: {ROOT / 'signals'}\nfile_names:\n{setting}")
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "callintel.yaml")
    assert str(refused.value).startswith(f"{tmp_path / 'callintel.yaml'}:{line}: {error}")


def test_a_night_stores_what_the_names_say(recorder, prefect_harness):
    import flows

    (recorder / "callintel.yaml").write_text(f"input: .\nout: out\nsignals: {ROOT / 'signals'}\n"
                                             f"file_names:\n  pattern: '{PATTERN}'\n  started_at_format: '{FORMAT}'\n")
    summary = flows.nightly(config=str(recorder / "callintel.yaml"), progress=False)
    assert summary["failures"] == [] and summary["counts"]["transcribed"] == 3
    with Store(recorder / "out").connect_read_only() as con:
        stored = con.execute("SELECT call_id, started_at, agent_id, extra->>'station' FROM calls ORDER BY 1").fetchall()
    assert stored == [("c1001", datetime(2026, 11, 20, 9, 14), "a_ruiz", "4"),
                      ("c1002", datetime(2026, 11, 20, 14, 2), "a_chen", "7"),
                      ("c1003", datetime(2026, 11, 21, 9, 30), "a_ruiz", "4")]


def test_check_names_the_recordings_whose_names_it_cannot_read(recorder):
    from click.testing import CliRunner

    from pipeline.cli import cli

    shutil.copy(JFK, recorder / "2026-11-21" / "transfer.flac")
    (recorder / "callintel.yaml").write_text(f"input: .\nsignals: {ROOT / 'signals'}\n"
                                             f"file_names:\n  pattern: '{PATTERN}'\n  started_at_format: '{FORMAT}'\n")
    checked = CliRunner().invoke(cli, ["check", "--config", str(recorder / "callintel.yaml")], catch_exceptions=False)
    assert checked.exit_code == 1  # as the night will
    assert (f"WARNING: file_names: 1 of 4 recording(s) in {recorder} cannot be read from their names, nor has a "
            "metadata.csv row; a new one waits (a failure each night) until it can:\n"
            "  2026-11-21/transfer.flac: the name does not match file_names.pattern") in checked.output
