"""`callintel forget`: a data-subject request removes a call everywhere, records who/when, and sticks."""
import json

from click.testing import CliRunner

from conftest import ROOT
from pipeline.cli import cli
from pipeline.schemas import TABLES
from pipeline.store import Store


def transcript(folder, call_id, agent, day, text):
    (folder / f"{call_id}.json").write_text(json.dumps({
        "call_id": call_id, "started_at": f"2026-11-{day}T10:00:00", "agent_id": agent, "utterances": [
            {"speaker": "agent", "start_s": 0.5, "end_s": 2.0, "text": "Thanks for calling, my name is Sam."},
            {"speaker": "customer", "start_s": 2.5, "end_s": 5.0, "text": text}]}))


def test_forget_removes_a_call_everywhere_and_it_is_not_stored_again(tmp_path, prefect_harness):
    import flows

    tx = tmp_path / "tx"
    tx.mkdir()
    transcript(tx, "keep-1", "a_chen", "09", "my phone screen went completely black this morning")  # for topics
    transcript(tx, "gone-1", "a_ruiz", "10", "I want to cancel my subscription, I'm Jo Bloggs")
    out = tmp_path / "out"
    run = dict(input=str(tmp_path / "none"), transcripts_dir=str(tx), out=str(out), signals=str(ROOT / "signals"))
    flows.nightly(**run)
    store = Store(out)
    assert "gone-1" in store.read("signal_hits").column("call_id").to_pylist()
    fitted = {store.meta()["topic_model"], store.meta()["topic_vectors"]}  # the model, its turns' vectors
    assert {p.name for p in (out / "models").glob("*")} == fitted and None not in fitted
    transcript(tx, "keep-2", "a_chen", "11", "the delivery van left my parcel at the wrong house")
    flows.nightly(**run)  # no refit due: the night keeps the vector of the turn it assigned, for the next fit
    assigned = [entry["file"] for entry in store.meta()["topic_vectors_assigned"]]
    assert {p.name for p in (out / "models").glob("*")} == fitted | set(assigned) and len(assigned) == 1

    declined = CliRunner().invoke(cli, ["forget", "--call-id", "gone-1", "--out", str(out)], input="n\n")
    assert declined.exit_code == 0 and declined.output.endswith("nothing was deleted\n")
    unanswered = CliRunner().invoke(cli, ["forget", "--call-id", "gone-1", "--out", str(out)], input="")  # cron
    assert unanswered.exit_code == 2 and "add --yes" in unanswered.output and "nothing was deleted" in unanswered.output
    assert "gone-1" in store.read("calls").column("call_id").to_pylist()
    result = CliRunner().invoke(cli, ["forget", "--call-id", "gone-1", "--call-id", "gone-l", "--out", str(out)],
                                input="y\n", catch_exceptions=False)  # gone-l: a typo in the request
    assert result.exit_code == 0 and "forgot 1 call(s)" in result.output
    assert result.output.splitlines()[0] == ("WARNING: no stored call matches --call-id gone-l (mistyped, forgotten "
                                             "before, or not stored yet); not deleted")
    for name, table in TABLES.items():
        if "call_id" in table.schema.names:
            assert "gone-1" not in store.read(name).column("call_id").to_pylist(), name
    assert store.read("calls").column("call_id").to_pylist() == ["keep-1", "keep-2"]
    with store.connect_read_only() as con:
        assert con.execute("SELECT count(*) FROM utterances WHERE call_id = 'gone-1'").fetchone()[0] == 0
        deletion = con.execute("SELECT selection, calls, rows, deleted_by FROM deletions").fetchall()
    assert deletion[0][:2] == ("call_id", 1) and deletion[0][2] >= 3 and deletion[0][3]
    raw = " ".join(p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file() and p.suffix != ".parquet")
    assert "Bloggs" not in raw
    # the topic model and the turns' vectors went too: refit next run
    assert not any((out / "models").glob("*")) and store.meta()["topic_vectors_assigned"] == []

    transcript(tx, "keep-1", "a_chen", "09", "my phone screen went completely black this morning, twice")  # fixed
    again = flows.nightly(**run)  # the forgotten call's transcript is still in the folder
    assert again["counts"]["imported"] == 0
    assert store.read("calls").column("call_id").to_pylist() == ["keep-1", "keep-2"]
    assert "twice" not in " ".join(store.read("utterances").column("text").to_pylist())  # a stored call is kept
    # neither file is dropped without a word: each is named, as a recording would be
    assert [n for n in again["notes"] if n.startswith(("keep-1.json", "gone-1.json"))] == [
        "keep-1.json: changed since it was stored as call keep-1 on an earlier night (its size or time differ); the "
        "stored call was kept; to store this version instead, `callintel forget --call-id keep-1 --yes` and give "
        "the file a new call_id (a forgotten call_id is never stored again)",
        "gone-1.json: deleted on request (callintel forget); not stored again"]
    # the refit says why it came, not "no topic model yet" (a model was fitted the first night)
    assert [n for n in again["notes"] if n.startswith("topic model refit")][0].startswith(
        "topic model refit (the topic model was dropped by callintel forget (it held the forgotten calls' turns))")


def test_forget_takes_a_callers_words_out_of_topic_labels_and_keeps_everyone_elses(
        tmp_path, prefect_harness):
    """Four calls of one caller, who gives their name, and three of others about the same fault made one topic
    labelled with the name ("zebulon quackenbush"): after forget the name is in no stored file, while the words
    the other callers said ("router", "orange") still name the topic."""
    import flows

    tx, out = tmp_path / "tx", tmp_path / "out"
    tx.mkdir()
    for i in range(4):
        transcript(tx, f"q-{i}", "a_chen", "20", "this is Zebulon Quackenbush, the router blinks orange")
    for i, text in enumerate(["my router light blinks orange all night", "the router keeps blinking orange at me",
                              "orange light blinking on the router again"]):
        transcript(tx, f"r-{i}", "a_ruiz", "20", text)
    flows.nightly(input=str(tmp_path / "none"), transcripts_dir=str(tx), out=str(out), signals=str(ROOT / "signals"))
    (topic,) = Store(out).read("topics").to_pylist()
    assert {"zebulon quackenbush", "router", "orange"} <= set(topic["top_terms"])  # what the case is about

    ids = [arg for i in range(4) for arg in ("--call-id", f"q-{i}")]
    result = CliRunner().invoke(cli, ["forget", *ids, "--yes", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0 and "forgot 4 call(s)" in result.output
    (topic,) = Store(out).read("topics").to_pylist()
    assert {"router", "orange", "blink orange"} <= set(topic["top_terms"]) and "router" in topic["label"]
    assert not [t for t in topic["top_terms"] if "zebulon" in t or "quackenbush" in t]
    assert topic["examples"] and "Zebulon" not in " ".join(topic["examples"])
    for path in out.rglob("*"):
        if path.is_file():
            assert b"quackenbush" not in path.read_bytes().lower(), path


def test_forget_by_agent_and_since_needs_a_match_and_a_selection(tmp_path):
    runner = CliRunner()
    empty = runner.invoke(cli, ["forget", "--out", str(tmp_path)])
    assert empty.exit_code == 2 and "say what to forget" in empty.output
    store = Store(tmp_path)
    with store.lock():
        store.publish()
    none = runner.invoke(cli, ["forget", "--agent", "a_nobody", "--since", "2026-11-01", "--yes", "--out", str(tmp_path)])
    assert none.exit_code == 2 and "no stored call matches; nothing was deleted" in none.output


def test_selectors_combine_and_every_one_must_hold():
    from datetime import date

    import pyarrow as pa

    from pipeline.forget import deletion_record, select_calls

    calls = pa.table({"call_id": ["a", "b", "c"], "agent_id": ["x", "y", None],
                      "call_date": [date(2026, 11, 9), date(2026, 11, 20), date(2026, 11, 21)]})
    assert select_calls(calls, agent="y") == {"b"}
    assert select_calls(calls, since=date(2026, 11, 20)) == {"b", "c"}
    assert select_calls(calls, ("a", "c"), since=date(2026, 11, 20)) == {"c"}
    assert select_calls(calls) == set()
    record = deletion_record(2, call_id=("a", "c"), agent=None, since=date(2026, 11, 20))
    assert record["selection"] == "call_id,since" and record["calls"] == 2
    assert set(record) == {"deletion_id", "deleted_at", "deleted_by", "selection", "calls"}  # no ids, no dates


def test_forget_waits_for_a_run_with_wait(tmp_path):
    """A request arriving during the night's run: refused at once without --wait (and told to add it), done
    once the run lets go with it."""
    import subprocess
    import sys

    store = Store(tmp_path)
    with store.lock():
        store.publish()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pipeline.store import Store\n"
                               f"with Store({str(tmp_path)!r}).lock():\n    print('held', flush=True)\n"
                               "    time.sleep(3)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        runner = CliRunner()
        busy = runner.invoke(cli, ["forget", "--agent", "a_ruiz", "--yes", "--out", str(tmp_path)])
        assert busy.exit_code == 75 and "--wait SECONDS" in busy.output  # busy, not a mistake
        waited = runner.invoke(cli, ["forget", "--agent", "a_ruiz", "--yes", "--wait", "60", "--out", str(tmp_path)])
        assert waited.exit_code == 2 and "no stored call matches; nothing was deleted" in waited.output
    finally:
        holder.kill()


def test_a_forgotten_calls_file_in_a_settled_folder_is_named_the_next_night(tmp_path, prefect_harness):
    """A folder whose files are all stored calls is not listed again (pipeline/listing.py); forgetting one of them
    must list it again, or operations never hear that the recording is still on the share."""
    import os

    import flows

    day = tmp_path / "tx" / "2026-11-10"
    day.mkdir(parents=True)
    transcript(day, "keep-1", "a_chen", "10", "my phone screen went completely black this morning")
    transcript(day, "gone-1", "a_ruiz", "10", "I want to cancel my subscription")
    os.utime(day, (1_700_000_000, 1_700_000_000))  # long unchanged, as last month's folder is: it may settle
    out = tmp_path / "out"
    run = dict(input=str(tmp_path / "none"), transcripts_dir=str(tmp_path / "tx"), out=str(out),
               signals=str(ROOT / "signals"))
    assert flows.nightly(**run)["counts"]["imported"] == 2
    flows.nightly(**run)  # finds both stored: the folder settles
    assert "2026-11-10" in Store(out).meta()["settled_folders"]["transcripts"]["folders"]
    forgot = CliRunner().invoke(cli, ["forget", "--call-id", "gone-1", "--yes", "--out", str(out)],
                                catch_exceptions=False)
    assert forgot.exit_code == 0
    night = flows.nightly(**run)
    assert night["counts"]["imported"] == 0
    assert [n for n in night["notes"] if "gone-1" in n] == [
        "2026-11-10/gone-1.json: deleted on request (callintel forget); not stored again"]
    assert Store(out).read("calls").column("call_id").to_pylist() == ["keep-1"]


def test_a_forgotten_recording_is_not_stored_again_under_another_call_id(tmp_path, prefect_harness):
    """Stored under its audio's hash (no metadata yet), forgotten, then its metadata row names it CRM-1001: the
    same recording came back as a new call. The audio itself is refused now, under any id."""
    import flows
    from conftest import JFK, write_wav

    day = tmp_path / "in" / "2026-11-20"
    day.mkdir(parents=True)
    write_wav(day / "rec1.wav", JFK, rate=8000, channels=2)
    out = tmp_path / "out"
    run = dict(input=str(tmp_path / "in"), out=str(out), signals=str(ROOT / "signals"), workers=1, progress=False)
    assert flows.nightly(**run)["counts"]["transcribed"] == 1
    (hashed,) = Store(out).read("calls").column("call_id").to_pylist()
    forgot = CliRunner().invoke(cli, ["forget", "--call-id", hashed, "--yes", "--out", str(out)],
                                catch_exceptions=False)
    assert forgot.exit_code == 0
    (day / "metadata.csv").write_text("file,call_id,started_at\nrec1.wav,CRM-1001,2026-11-20T09:00:00\n")
    night = flows.nightly(**run)
    assert (night["counts"]["transcribed"], night["failures"]) == (0, [])
    assert "2026-11-20/rec1.wav: deleted on request (callintel forget); not stored again" in night["notes"]
    assert Store(out).read("calls").num_rows == 0

