"""Ready-made transcripts as CSV, one row per turn: the same call as the JSON it was exported from, or one line
naming the file and row."""
import csv
import io
import json
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from pipeline.transcripts import Reading, load_transcript, load_transcripts

DEMO = sorted((ROOT / "data/demo_transcripts").glob("*.json"))
CALL = ["call_id", "started_at", "agent_id", "queue", "direction"]


def as_csv(doc: dict, delimiter=",", call_on_every_row=True, times=lambda s: s, speaker=lambda s: s) -> str:
    """A JSON transcript as a speech-analytics export writes it: the call's columns, then one row per turn."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")  # as Excel saves it
    writer.writerow(CALL + ["speaker", "start_s", "end_s", "text"])
    for i, u in enumerate(doc["utterances"]):
        call = [doc.get(c) or "" for c in CALL] if call_on_every_row or i == 0 else [""] * len(CALL)
        writer.writerow(call + [speaker(u["speaker"]), times(u["start_s"]), times(u["end_s"]), u["text"]])
    return out.getvalue()


def loaded(path: Path):
    got = load_transcript(path, path.name)
    call = {k: v for k, v in got.call.items() if k not in ("source_path", "file_size", "file_mtime")}
    return call, got.utterances


@pytest.mark.parametrize("json_path", DEMO, ids=lambda p: p.stem)
def test_a_demo_call_exported_as_csv_is_the_same_call(tmp_path, json_path):
    doc = json.loads(json_path.read_text())
    (tmp_path / f"{json_path.stem}.csv").write_text(as_csv(doc), newline="")
    assert loaded(tmp_path / f"{json_path.stem}.csv") == loaded(json_path)


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:06.3f}"  # 1:02.500


@pytest.mark.parametrize("variant", [
    {"delimiter": ";", "times": lambda s: f"{s}".replace(".", ",")},  # a spreadsheet in a comma-decimal language
    {"delimiter": "\t"},
    {"times": clock, "speaker": str.capitalize},                         # "Agent", "0:03.100"
    {"call_on_every_row": False},                                        # the call's columns on the first row only
])
def test_what_exporters_and_spreadsheets_write_is_read_the_same(tmp_path, variant):
    doc = json.loads(DEMO[0].read_text())
    (tmp_path / "call.csv").write_bytes(b"\xef\xbb\xbf" + as_csv(doc, **variant).encode())  # with Excel's BOM
    assert loaded(tmp_path / "call.csv") == loaded(DEMO[0])


def test_blank_columns_a_spreadsheet_keeps_at_the_end_are_not_columns(tmp_path):
    doc = json.loads(DEMO[0].read_text())
    lines = as_csv(doc).split("\r\n")[:-1]
    (tmp_path / "call.csv").write_text("".join(f"{line},,\r\n" for line in lines), newline="")  # two unnamed columns
    assert loaded(tmp_path / "call.csv") == loaded(DEMO[0])


def test_the_file_name_is_the_call_id_and_a_column_the_same_on_every_row_is_kept(tmp_path):
    (tmp_path / "c-77.csv").write_text("started_at,speaker,start_s,end_s,text,crm_case,confidence\n"
                                       "2026-11-20T09:14:00,agent,0.4,3.1,Thank you for calling.,X-12,0.9\n"
                                       "2026-11-20T09:14:00,customer,3.5,5.0,\"Hi, I need help.\",X-12,0.7\n")
    call, utterances = loaded(tmp_path / "c-77.csv")
    assert call["call_id"] == "c-77" and call["duration_s"] == 5.0 and json.loads(call["extra"]) == {"crm_case": "X-12"}
    assert [(u["speaker"], u["text"]) for u in utterances] == [("agent", "Thank you for calling."),
                                                               ("customer", "Hi, I need help.")]


def test_columns_are_read_however_an_export_names_them(tmp_path):
    """`Call ID`, `Agent`, `Queue Name`: ours (agent and queue were kept as extra fields: the call had no agent)."""
    (tmp_path / "x.csv").write_text("Call ID,Started At,Agent,Queue Name,Speaker,Start_S,End_S,Text,Campaign\n"
                                    "x-1,2026-10-01T10:00:00,a1,billing,agent,0,1,Hi,spring\n")
    call, utterances = loaded(tmp_path / "x.csv")
    assert (call["call_id"], call["agent_id"], call["queue"], json.loads(call["extra"])) == (
        "x-1", "a1", "billing", {"campaign": "spring"})
    assert [(u["speaker"], u["text"]) for u in utterances] == [("agent", "Hi")]


def test_a_column_written_on_the_first_row_only_is_the_calls_as_the_call_columns_are(tmp_path):
    """The layout with the call's columns on the first row only: a `disposition` there is the call's too (it was
    dropped); a column that changes from turn to turn (a per-turn score) is not the call's."""
    (tmp_path / "x.csv").write_text("call_id,started_at,agent_id,disposition,speaker,start_s,end_s,text,score\n"
                                    "x,2026-10-01T10:00:00,a1,resolved,agent,0,1,Hi,0.9\n"
                                    ",,,,customer,1,2,Hello,0.4\n")
    call, _ = loaded(tmp_path / "x.csv")
    assert (call["agent_id"], json.loads(call["extra"])) == ("a1", {"disposition": "resolved"})


@pytest.mark.parametrize("agent, customer", [("Rep", "Caller"), ("ADVISOR", "client"), ("CSR", "Customer")])
def test_the_sides_as_exports_call_them_are_agent_and_customer(tmp_path, agent, customer):
    doc = json.loads(DEMO[0].read_text())
    said = {"agent": agent, "customer": customer}
    (tmp_path / "call.csv").write_text(as_csv(doc, speaker=lambda s: said.get(s, s)), newline="")
    assert loaded(tmp_path / "call.csv") == loaded(DEMO[0])


HEAD = "call_id,started_at,speaker,start_s,end_s,text\n"
TURN = "c-9,2026-11-20T09:14:00,agent,0.4,3.1,Hello.\n"


@pytest.mark.parametrize("body, error", [
    ("", "bad.csv: empty file (0 bytes); export the transcript again"),
    (HEAD, "bad.csv: a header and no rows; export the transcript again"),
    ("call_id,speaker,start_s,end_s,text\nc-9,agent,0.4,3.1,Hi\n",
     'bad.csv: no column started_at (its columns: call_id, speaker, start_s, end_s, text); see README.md, "Inputs"'),
    (HEAD + TURN + "c-9,2026-11-20T09:14:00,robot,3.5,5.0,Hi\n",
     "bad.csv: row 3: speaker 'robot' is not agent, customer or unknown, nor a word for one (rep, caller, ...); name it in callintel.yaml transcript_speakers"),
    (HEAD + TURN + "c-9,2026-11-20T09:14:00,customer,5.0,3.5,Hi\n", "bad.csv: row 3: end_s is before start_s"),
    # a spreadsheet numbers blank rows too: the row named is the one it shows
    (HEAD + TURN + "\n" + "c-9,2026-11-20T09:14:00,robot,3.5,5.0,Hi\n",
     "bad.csv: row 4: speaker 'robot' is not agent, customer or unknown, nor a word for one (rep, caller, ...); name it in callintel.yaml transcript_speakers"),
    ("\n" + HEAD + TURN + "c-9,2026-11-20T09:14:00,robot,3.5,5.0,Hi\n",
     "bad.csv: row 4: speaker 'robot' is not agent, customer or unknown, nor a word for one (rep, caller, ...); name it in callintel.yaml transcript_speakers"),
    (HEAD + "c-9,2026-11-20T09:14:00,agent,soon,3.1,Hi\n",
     "bad.csv: row 2: start_s: 'soon' is not a time (seconds, like 12.5, or a clock time, like 1:02.5)"),
    (HEAD + TURN + "c-9,2026-11-21T10:00:00,customer,3.5,5.0,Hi\n",
     "bad.csv: the rows disagree on started_at ('2026-11-20T09:14:00' and '2026-11-21T10:00:00'); a file is one call"),
    (HEAD + "c-9,2026-11-20T09:14:00,agent,0.4,3.1,Hello, how can I help?\n",
     "bad.csv: row 2 has 7 cells but the header 6 (a ',' in a text that is not in quotes?)"),
    (HEAD + "c-9,yesterday,agent,0.4,3.1,Hi\n", "bad.csv: started_at: 'yesterday' is not an ISO-8601 timestamp "
     "(write it as 2026-11-20T09:14:00: year first, two digits for the month, day, hour and minute)"),
    # a 25-minute call exported in milliseconds under the seconds' names
    (HEAD + TURN + "c-9,2026-11-20T09:14:00,customer,1498000,1500000,Bye\n",
     "bad.csv: row 3: end_s 1.5e+06 is more than a day into the call; times are in seconds (milliseconds may be "
     "given as start_ms and end_ms)"),
    ("call_id,started_at,speaker,start_ms,end_ms,text\nc-9,2026-11-20T09:14:00,agent,400,soon,Hi\n",
     "bad.csv: row 2: end_ms: 'soon' is not a number of milliseconds"),
    # kept as an extra field, a misspelt column left the call without its agent, out of every agent's figures
    ("call_id,started_at,agnet_id,speaker,start_s,end_s,text\nc-9,2026-11-20T09:14:00,a1,agent,0.4,3.1,Hi\n",
     "bad.csv: column 'agnet_id' is not one callintel reads; did you mean 'agent_id'? (rename it: a column "
     "callintel does not read is kept in calls.extra, so a misspelt one is refused)"),
    # an export with other names has several problems: all of them at once, not one a night
    ("conversation_id,start_time,agent,queue,channel,begin,end,transcript\nc-9,09:14,a1,billing,0,0.4,3.1,Hi\n",
     "bad.csv: column 'end' is not one callintel reads; did you mean 'end_s'? (rename it: a column callintel does "
     "not read is kept in calls.extra, so a misspelt one is refused); no column speaker, start_s, end_s, text, "
     "started_at (its columns: conversation_id, start_time, agent_id, queue, channel, begin, end, transcript); see "
     "README.md, \"Inputs\""),
    (HEAD + "c-9,2026-11-20T09:14:00,agent,0.4,3.1,\"Hi\n" + TURN * 3,
     "bad.csv: not valid CSV from line 2: unexpected end of data (a quote that is never closed?)"),
])
def test_a_bad_csv_fails_alone_with_one_line_naming_the_file_and_row(tmp_path, body, error):
    (tmp_path / "bad.csv").write_text(body)
    (tmp_path / "good.json").write_text(DEMO[0].read_text())
    calls, found, skipped, failures = load_transcripts(tmp_path, set())
    assert [c.call["source_path"] for c in calls] == ["good.json"] and (found, skipped) == (2, 0)
    assert [(f["source_path"], f["error"]) for f in failures] == [("bad.csv", error)]


def test_windows_1252_is_read_other_bytes_are_refused_and_a_recordings_metadata_csv_is_not_read(tmp_path):
    """Excel's "CSV" on Windows is Windows-1252: read as saved (it was refused, to be exported again)."""
    (tmp_path / "windows.csv").write_bytes((HEAD + TURN.replace("Hello", "Caf\xe9 \u2013 \u20ac5")).encode("cp1252"))
    (tmp_path / "binary.csv").write_bytes((HEAD + TURN).encode() + b"\x81\x8d")  # no character in either
    (tmp_path / "metadata.csv").write_text("file,call_id\na.wav,c-1\n")  # the transcripts folder is the recordings'
    calls, found, _, failures = load_transcripts(tmp_path, set())
    assert found == 2 and [u["text"] for c in calls for u in c.utterances][0].startswith("Caf\xe9 \u2013 \u20ac5")
    assert [f["error"] for f in failures] == [
        "binary.csv: neither UTF-8 nor Windows-1252 text; export the CSV as UTF-8"]


def test_a_night_of_csv_transcripts_stores_what_the_json_ones_store(tmp_path, prefect_harness):
    """The whole night (redact, tag, score, flag) on the demo calls exported as CSV equals the night on the JSON."""
    import flows

    (tmp_path / "json").mkdir()
    (tmp_path / "csv").mkdir()
    for path in DEMO:
        (tmp_path / "json" / path.name).write_text(path.read_text())
        (tmp_path / "csv" / f"{path.stem}.csv").write_text(as_csv(json.loads(path.read_text())), newline="")
    (tmp_path / "csv" / "broken.csv").write_text(HEAD + "c-99,2026-11-20T09:14:00,robot,0,1,Hi\n")
    nights = {kind: flows.nightly(input=str(tmp_path / "none"), transcripts_dir=str(tmp_path / kind),
                                  out=str(tmp_path / f"out-{kind}"), signals=str(ROOT / "signals"), progress=False)
              for kind in ("json", "csv")}
    assert nights["json"]["counts"]["imported"] == nights["csv"]["counts"]["imported"] == len(DEMO)
    assert [f["error"] for f in nights["csv"]["failures"]] == [
        "broken.csv: row 2: speaker 'robot' is not agent, customer or unknown, nor a word for one (rep, caller, ...); name it in callintel.yaml transcript_speakers"]
    queries = ["SELECT * EXCLUDE (run_id, source_path, file_size, file_mtime) FROM calls",
               "SELECT * FROM utterances", "SELECT * FROM signal_hits", "SELECT * FROM call_categories",
               "SELECT * FROM scorecards", "SELECT * FROM scorecard_items", "SELECT * EXCLUDE (created_run) FROM flags"]
    tables = {}
    for kind in nights:
        with duckdb.connect(str(tmp_path / f"out-{kind}" / "callintel.duckdb"), read_only=True) as con:
            tables[kind] = [sorted(map(repr, con.execute(q).fetchall())) for q in queries]
    assert all(tables["json"]) and tables["csv"] == tables["json"]


CELLS = st.one_of(st.sampled_from(["agent", "Customer", "unknown", "0.4", "1:02.5", "2026-11-20T09:14:00", "", "c-1",
                                   '"', '""', "a,b", "\n", "x;y", "\t", "-1", "nan", "inf", "1e400", "99:99", "é"]),
                  st.text(max_size=5))
COLUMNS = st.lists(st.sampled_from(CALL + ["speaker", "start_s", "end_s", "text", "crm_case"]), min_size=3, max_size=8)


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(COLUMNS, st.lists(st.lists(CELLS, max_size=8), max_size=5), st.sampled_from([",", ";", "\t"]))
def test_whatever_a_csv_holds_it_is_a_call_or_one_line_naming_the_file(tmp_path, columns, rows, delimiter):
    (tmp_path / "f.csv").write_text(delimiter.join(columns) + "\n" + "\n".join(delimiter.join(r) for r in rows))
    try:
        load_transcript(tmp_path / "f.csv", "f.csv")
    except ValueError as exc:
        assert str(exc).startswith("f.csv: ") and "\n" not in str(exc)


def both(folder, stem: str, columns: tuple[str, ...], turns: list[tuple]) -> list[str]:
    """The same call as a CSV and as a JSON transcript, its turns given as values of `columns`: the two names."""
    started = "2026-11-20T09:14:00"
    (folder / f"{stem}.csv").write_text("call_id,started_at," + ",".join(columns) + "\n" + "".join(
        f"{stem},{started}," + ",".join(map(str, turn)) + "\n" for turn in turns))
    (folder / f"{stem}.json").write_text(json.dumps({"call_id": stem, "started_at": started,
                                                     "utterances": [dict(zip(columns, turn)) for turn in turns]}))
    return [f"{stem}.csv", f"{stem}.json"]


def test_times_in_milliseconds_are_read_as_seconds_in_csv_and_json(tmp_path):
    """start_ms/end_ms columns (or keys) give the same turns as the seconds they stand for."""
    for name in both(tmp_path, "ms", ("speaker", "start_ms", "end_ms", "text"),
                     [("agent", 400, 3100, "Hello."), ("customer", 3400, 1502250, "Hi")]):
        got = load_transcript(tmp_path / name, name)
        assert [(u["start_s"], u["end_s"]) for u in got.utterances] == [(0.4, 3.1), (3.4, 1502.25)], name
        assert got.call["duration_s"] == 1502.25


def test_a_transferred_call_is_the_first_agents_and_keeps_every_agent_and_queue(tmp_path):
    """The agent and queue change where the call was transferred: the call is stored (not refused), under the agent
    who took it, with all of them in order in calls.extra."""
    (tmp_path / "t.csv").write_text("call_id,started_at,agent_id,queue,speaker,start_s,end_s,text\n"
                                    "c-7,2026-11-20T09:14:00,a_ruiz,billing,agent,0,2,Billing - Ruiz speaking.\n"
                                    "c-7,2026-11-20T09:14:00,a_ruiz,billing,customer,2,4,My phone is broken.\n"
                                    "c-7,2026-11-20T09:14:00,a_chen,technical,agent,4,6,Tech support - Chen here.\n"
                                    "c-7,2026-11-20T09:14:00,a_ruiz,technical,agent,6,8,Ruiz again - all sorted?\n")
    got = load_transcript(tmp_path / "t.csv", "t.csv")
    assert (got.call["agent_id"], got.call["queue"]) == ("a_ruiz", "billing")
    assert json.loads(got.call["extra"]) == {"agent_ids": ["a_ruiz", "a_chen"], "queues": ["billing", "technical"]}
    assert len(got.utterances) == 4


def test_the_centres_names_for_its_speakers_are_read_as_sides_in_csv_and_json(tmp_path):
    """A diarising export's Speaker 1/Speaker 2, named in callintel.yaml transcript_speakers, are the agent and
    the customer; an export's word for a side (Caller) is read in JSON as in CSV; an unnamed one is refused."""
    reading = Reading(speakers=(("speaker 1", "agent"), ("speaker 2", "customer")))
    for name in both(tmp_path, "s", ("speaker", "start_s", "end_s", "text"),
                     [("Speaker 1", 0, 2, "Hello."), ("Caller", 2, 4, "Hi.")]):
        assert [u["speaker"] for u in load_transcript(tmp_path / name, name, reading).utterances] == [
            "agent", "customer"], name
    with pytest.raises(ValueError, match=r"^s.csv: row 2: speaker 'Speaker 1' is not agent, customer or unknown, "
                                         r"nor a word for one \(rep, caller, ...\); name it in callintel.yaml "
                                         r"transcript_speakers$"):
        load_transcript(tmp_path / "s.csv", "s.csv")
    with pytest.raises(ValueError, match=r"^s.json: utterances\[0\]: speaker 'Speaker 1' is not agent, customer or "
                                         r"unknown, nor a word for one \(rep, caller, ...\); name it in callintel.yaml "
                                         r"transcript_speakers$"):
        load_transcript(tmp_path / "s.json", "s.json")
