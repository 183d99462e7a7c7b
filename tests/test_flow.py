"""The nightly Prefect flow end to end on real files: idempotent, failure-tolerant, kill-safe."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from conftest import JFK, ROOT, strings_in, write_wav
from pipeline.store import Store

CALLINTEL = str(Path(sys.executable).with_name("callintel"))


def recordings(folder: Path, n: int = 3) -> Path:
    """n distinct calls (speech offset differs) at telephone rate, one mono; plus metadata.csv."""
    folder.mkdir(parents=True)
    lines = ["file,call_id,started_at,agent_id,queue,agent_channel,notes"]  # notes: a CRM's column, kept in extra
    for i in range(n):
        name = f"day{i % 2}/call{i}.wav"
        (folder / name).parent.mkdir(exist_ok=True)
        write_wav(folder / name, JFK, rate=8000, channels=1 if i == 0 else 2, offset_s=0.5 * i)
        notes = "paid by card 4111 1111 1111 1111" if i == 1 else ""
        lines.append(f"{name},c-{i},2026-11-{9 + i % 2:02d}T10:00:00,a_{i % 2},billing,,{notes}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


def transcripts(folder: Path) -> Path:
    folder.mkdir()
    (folder / "t-1.json").write_text(json.dumps({
        "call_id": "t-1", "started_at": "2026-11-10T11:00:00", "customer_email": "anna.brooks@gmail.com",
        "notes": "customer gave card 4111 1111 1111 1111 and phone 415-555-0132", "utterances": [
            {"speaker": "agent", "start_s": 0.5, "end_s": 2.0, "text": "Thanks for calling, this is Sam."},
            {"speaker": "customer", "start_s": 2.4, "end_s": 4.0, "text": "Hi, my app keeps crashing."},
            {"speaker": "customer", "start_s": 4.5, "end_s": 9.0,
             "text": "Take the payment on my card, four one one one, one one one one, 1111 1111."}]}))
    (folder / "t-2.json").write_text('{"call_id": "t-2", "utterances": [}')
    return folder


def assert_no_leak(out: Path, secrets: list[str]) -> None:
    """No secret in any stored text (Parquet is compressed, so read it back) nor in any plain file.

    Only string values are searched: numbers (file times) and generated ids (hashes, run ids) can hold any
    digit string by chance, so the secrets are the card's forms as the input spelled them.
    """
    from pipeline.schemas import TABLES

    store = Store(out)
    for name in TABLES:
        text = "\n".join(strings_in(store.read(name).drop_columns(
            [c for c in ("audio_sha256", "run_id", "created_run") if c in TABLES[name].schema.names]).to_pylist()))
        assert not [s for s in secrets if s in text], name
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".csv", ".txt"):
            # A page's meta hash is a generated id too: 32 hex digits hold "4111" by chance about once in 2,300.
            text = re.sub(r"\b[0-9a-f]{16,}\b", "<id>", path.read_text().lower())
            assert not [s for s in secrets if s in text], path


def table_rows(out: Path, table: str, order: str) -> list:
    with Store(out).connect_read_only() as con:
        return con.execute(f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY {order}").fetchall() \
            if table == "calls" else con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def test_nightly_writes_every_call_once_and_reruns_add_nothing(tmp_path, prefect_harness):
    import flows

    inp = recordings(tmp_path / "rec")
    (inp / "broken.wav").write_bytes(b"")
    tx = transcripts(tmp_path / "tx")
    out = tmp_path / "out"
    began = time.perf_counter()
    first = flows.nightly(input=str(inp), transcripts_dir=str(tx), out=str(out), workers=2, progress=False,
                          signals=str(ROOT / "signals"))
    took = time.perf_counter() - began
    # Where the night went, step by step: steps that do not overlap, inside the flow's own time.
    assert list(first["seconds"]) == ["re-tag and re-score", "transcripts", "recordings", "topics",
                                      "scorecard pages", "compact and publish"]
    assert min(first["seconds"].values()) >= 0 and sum(first["seconds"].values()) <= took
    assert json.loads(Path(first["summary_path"]).read_text())["seconds"] == first["seconds"]
    assert first["audio_s"] == pytest.approx(sum(wav_seconds(p) for p in inp.rglob("call*.wav")), abs=0.01)
    # Every call is scored; none of them reads the recording disclosure, so all four are flagged.
    assert first["counts"] == {"found": 6, "skipped": 0, "transcribed": 3, "imported": 1, "tagged": 4,
                               "retagged": 0, "utterances": first["counts"]["utterances"], "failed": 2,
                               "redacted": 5, "scored": 4, "rescored": 0, "flagged": 4}
    assert sorted((f["source_path"], f["stage"]) for f in first["failures"]) == [
        ("broken.wav", "ingest"), ("t-2.json", "ingest")]
    assert first["status"] == "partial"

    store = Store(out)
    calls = store.read("calls").to_pandas().set_index("call_id")
    assert sorted(calls.index) == ["c-0", "c-1", "c-2", "t-1"]
    assert calls.loc["c-0", "agent_channel"] == "mono" and calls.loc["c-1", "agent_channel"] == "left"
    assert calls.loc["t-1", "asr_model"] == "transcript" and calls.loc["c-1", "asr_model"] == "tiny.en"
    utts = store.read("utterances").to_pandas()
    assert set(utts.loc[utts.call_id == "c-0", "speaker"]) == {"unknown"}
    assert set(utts.loc[utts.call_id == "c-1", "speaker"]) == {"agent"}  # speech on the left = agent
    assert list(utts.loc[utts.call_id == "t-1", "speaker"]) == ["agent", "customer", "customer"]
    assert utts.loc[utts.call_id == "t-1", "text"].iloc[2] == "Take the payment on my card, [CARD]."
    # Other metadata is text too: a card, a phone or an e-mail there is redacted as in what was said.
    assert json.loads(calls.loc["c-1", "extra"]) == {"notes": "paid by card [CARD]"}
    assert json.loads(calls.loc["t-1", "extra"]) == {"customer_email": "[EMAIL]",
                                                     "notes": "customer gave card [CARD] and phone [PHONE]"}
    assert_no_leak(out, ["four one one one", "one one one one", "1111 1111", "4111", "anna.brooks", "555-0132"])
    assert len(utts) == first["counts"]["utterances"]

    with store.connect_read_only() as con:
        assert con.execute("SELECT count(*) FROM utterances").fetchone()[0] == len(utts)
        assert con.execute("SELECT count(*) FROM failures").fetchone()[0] == 2
        run = con.execute("SELECT status, transcribed, imported FROM runs").fetchall()
    assert run == [("partial", 3, 1)]

    parts_before = store.manifest()
    second = flows.nightly(input=str(inp), transcripts_dir=str(tx), out=str(out), workers=2, progress=False,
                           signals=str(ROOT / "signals"))
    assert (second["counts"]["transcribed"], second["counts"]["imported"], second["counts"]["skipped"]) == (0, 0, 4)
    after = store.manifest()
    for table in ("calls", "utterances"):
        assert after[table] == parts_before[table]
    assert len(after["runs"]) == len(parts_before["runs"]) + 1


def test_a_call_that_comes_as_recording_and_transcript_in_one_night_is_stored_once_from_the_transcript(
        tmp_path, prefect_harness):
    import flows

    inp = recordings(tmp_path / "rec", n=2)
    tx = tmp_path / "tx"
    tx.mkdir()
    (tx / "c-1.json").write_text(json.dumps({"call_id": "c-1", "started_at": "2026-11-10T10:00:00", "utterances": [
        {"speaker": "agent", "start_s": 0.5, "end_s": 2.0, "text": "Thanks for calling, this is Sam."}]}))
    night = flows.nightly(input=str(inp), transcripts_dir=str(tx), out=str(tmp_path / "out"), workers=1,
                          progress=False, signals=str(ROOT / "signals"))
    assert (night["counts"]["transcribed"], night["counts"]["imported"]) == (1, 1)
    calls = Store(tmp_path / "out").read("calls").to_pandas()
    assert sorted(calls["call_id"]) == ["c-0", "c-1"]
    assert calls.set_index("call_id").loc["c-1", "asr_model"] == "transcript"
    notes = json.loads(Path(night["summary_path"]).read_text())["notes"]
    assert "day1/call1.wav: call c-1 also came as a transcript; the transcript was used" in notes


def test_a_recording_arriving_after_its_call_was_stored_from_a_transcript_is_named_in_the_notes(
        tmp_path, prefect_harness):
    """The vendor's transcript of c-1 came on one night, its recording on the next: the call is not stored twice
    nor replaced, and the night says why the recording was not transcribed."""
    import flows

    tx = tmp_path / "tx"
    tx.mkdir()
    (tx / "c-1.json").write_text(json.dumps({"call_id": "c-1", "started_at": "2026-11-10T10:00:00", "utterances": [
        {"speaker": "agent", "start_s": 0.5, "end_s": 2.0, "text": "Thanks for calling, this is Sam."}]}))
    options = dict(transcripts_dir=str(tx), out=str(tmp_path / "out"), workers=1, progress=False,
                   signals=str(ROOT / "signals"))
    first = flows.nightly(input=str(tmp_path / "rec"), **options)
    assert first["counts"]["imported"] == 1
    inp = recordings(tmp_path / "rec", n=2)  # call0.wav is c-0, new; call1.wav is c-1
    second = flows.nightly(input=str(inp), **options)
    assert (second["counts"]["transcribed"], second["counts"]["imported"], second["failures"]) == (1, 0, [])
    calls = Store(tmp_path / "out").read("calls").to_pandas().set_index("call_id")
    assert sorted(calls.index) == ["c-0", "c-1"] and calls.loc["c-1", "asr_model"] == "transcript"
    notes = json.loads(Path(second["summary_path"]).read_text())["notes"]
    assert ("day1/call1.wav: call c-1 was stored from c-1.json on an earlier night; that call was kept and this "
            "recording not used") in notes
    # a corrected transcript delivered under a new name: not used, and said (it went unused without a word)
    (tx / "c-1-corrected.json").write_text((tx / "c-1.json").read_text().replace("Sam", "Samir"))
    third = flows.nightly(input=str(inp), **options)
    assert (third["counts"]["imported"], third["failures"]) == (0, [])
    assert ("c-1-corrected.json: call c-1 was stored from c-1.json on an earlier night; that call was kept and "
            "this transcript not used") in third["notes"]


def test_a_stored_recording_copied_under_another_call_id_is_not_stored_twice(tmp_path, prefect_harness):
    """A recorder or a copy job delivers c-0's file again under a new name, its metadata row giving it another id:
    stored, the call would count twice in every trend and be scored twice. Said once, then left; two such copies
    in one night are both that stored call, not one new call and its copy."""
    import flows

    inp = recordings(tmp_path / "rec", n=1)
    options = dict(input=str(inp), out=str(tmp_path / "out"), workers=1, progress=False, signals=str(ROOT / "signals"))
    assert flows.nightly(**options)["counts"]["transcribed"] == 1
    (inp / "day1").mkdir()
    for name, call_id in (("resent.wav", "c-77"), ("resent-again.wav", "c-78")):
        shutil.copy(inp / "day0" / "call0.wav", inp / "day1" / name)
        with (inp / "metadata.csv").open("a") as rows:
            rows.write(f"day1/{name},{call_id},2026-11-10T10:00:00,a_1,billing,,\n")
    an_hour_ago = time.time() - 3600  # delivered last night, not being written now
    for path in (inp / "day1" / "resent.wav", inp / "day1" / "resent-again.wav", inp / "day1"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    second = flows.nightly(**options)
    assert (second["counts"]["transcribed"], second["failures"]) == (0, [])
    assert ("day1/resent.wav: the same recording (byte for byte) as call c-0, stored on an earlier night; not "
            "stored again as call c-77") in second["notes"]
    assert ("day1/resent-again.wav: the same recording (byte for byte) as call c-0, stored on an earlier night; "
            "not stored again as call c-78") in second["notes"]
    assert Store(tmp_path / "out").read("calls").column("call_id").to_pylist() == ["c-0"]
    third = flows.nightly(**options)
    assert not [note for note in third["notes"] if "resent.wav" in note]


def _started(out: Path) -> bool:
    """The run holds the lock and wrote its 'running' summary, before any commit."""
    return any(json.loads(p.read_text()).get("status") == "running" for p in (out / "runs").glob("*.json"))


def _first_commit(out: Path) -> bool:
    manifest = out / "parquet" / "_manifest.json"
    return manifest.exists() and bool(json.loads(manifest.read_text())["parts"].get("calls"))


@pytest.mark.parametrize("kill_when, committed_calls", [(_started, (0, 0)), (_first_commit, (1, 3))],
                         ids=["before-any-commit", "after-first-commit"])
def test_a_killed_run_rerun_ends_with_the_rows_of_an_uninterrupted_one(tmp_path, prefect_harness, kill_when,
                                                                       committed_calls):
    import flows
    from prefect.settings import PREFECT_API_URL

    inp = recordings(tmp_path / "rec", n=4)
    clean = tmp_path / "clean"
    flows.nightly(input=str(inp), out=str(clean), workers=1, progress=False, signals=str(ROOT / "signals"))

    (tmp_path / "callintel.yaml").write_text(f"commit_every: 1\nsignals: {ROOT / 'signals'}\n")
    killed = tmp_path / "killed"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # reuse the harness server: no 15 s start-up
    cmd = [CALLINTEL, "run", "--config", str(tmp_path / "callintel.yaml"), "--input", str(inp),
           "--out", str(killed), "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if kill_when(killed):
                break
        except (OSError, ValueError):  # a file caught mid-replace: look again
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = len(Store(killed).read("calls"))
    assert committed_calls[0] <= committed <= committed_calls[1], "the kill landed elsewhere than intended"

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for table, order in (("calls", "call_id"), ("utterances", "call_id, utt_idx"),
                         ("signal_hits", "call_id, utt_idx, signal_id")):
        assert table_rows(killed, table, order) == table_rows(clean, table, order)
    with Store(killed).connect_read_only() as con:
        statuses = sorted(r[0] for r in con.execute("SELECT status FROM runs").fetchall())
        (stopped,) = con.execute("SELECT transcribed, imported, notes FROM runs WHERE status = 'interrupted'")\
            .fetchall()
    assert statuses == ["interrupted", "ok"]
    # its row counts the calls it had committed (the store's calls say which run stored them)
    assert stopped[:2] == (committed, 0) and f"the {committed} call" in stopped[2][0]


def test_a_run_an_error_stops_says_where_and_why_keeps_what_it_committed_and_the_next_run_finishes(
        tmp_path, prefect_harness):
    """A real error, not a bad call: the first night on a machine whose embedding cache folder cannot be made
    (CALLINTEL_CACHE under a file). It used to be recorded as a kill, with its counts lost, and exit 1."""
    from prefect.settings import PREFECT_API_URL

    demo = ROOT / "data" / "demo_transcripts"
    calls = sorted(p.stem for p in demo.glob("*.json"))
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "no-recordings").mkdir()
    out = tmp_path / "out"
    cmd = [CALLINTEL, "run", "--transcripts", str(demo), "--input", str(tmp_path / "no-recordings"),
           "--out", str(out), "--signals", str(ROOT / "signals"), "--quiet"]
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "CALLINTEL_CACHE": str(tmp_path / "a-file" / "c")}
    stopped = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 3, stopped.stderr[-2000:]
    said = [line for line in stopped.stderr.splitlines() if line.startswith("Error:")]
    assert len(said) == 1 and "TopicModelError" in said[0] and "CALLINTEL_CACHE" in said[0]
    with Store(out).connect_read_only() as con:  # published: the calls it stored can be queried
        runs = con.execute("SELECT status, imported, notes FROM runs").fetchall()
        assert sorted(r[0] for r in con.execute("SELECT call_id FROM calls").fetchall()) == calls
    assert [(status, imported) for status, imported, _ in runs] == [("failed", len(calls))]
    assert any("step 'topics'" in note and "CALLINTEL_CACHE" in note for note in runs[0][2])
    assert [json.loads(p.read_text())["status"] for p in (out / "runs").glob("*.json")] == ["failed"]

    env["CALLINTEL_CACHE"] = str(tmp_path / "cache")  # fixed: the next run does the rest
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    with Store(out).connect_read_only() as con:
        runs = con.execute("SELECT status, imported FROM runs ORDER BY started_at").fetchall()
        assert con.execute("SELECT count(*), count(DISTINCT call_id) FROM calls").fetchone() == (len(calls),) * 2
        assert con.execute("SELECT count(*) FROM topics").fetchone()[0] >= 1
    assert runs == [("failed", len(calls)), ("ok", 0)]


def test_a_served_night_whose_folders_are_gone_fails_instead_of_reading_nothing(tmp_path, prefect_harness):
    """`callintel run` checks its folders before it starts; a served night reloads its config and may find a
    share unmounted. It used to finish 'ok', found 0, with nothing said."""
    import flows

    with pytest.raises(FileNotFoundError, match="input folder .*unmounted does not exist"):
        flows.nightly(input=str(tmp_path / "unmounted"), out=str(tmp_path / "out"), signals=str(ROOT / "signals"))
    with Store(tmp_path / "out").connect_read_only() as con:
        ((status, notes),) = con.execute("SELECT status, notes FROM runs").fetchall()
    assert status == "failed" and any("input folder" in n and "unmounted does not exist" in n for n in notes)

    (tmp_path / "tx").mkdir()  # transcripts only, the recordings share gone: the run goes on, and says so
    night = flows.nightly(input=str(tmp_path / "unmounted"), transcripts_dir=str(tmp_path / "tx"),
                          out=str(tmp_path / "out"), signals=str(ROOT / "signals"))
    assert night["status"] == "ok"
    assert night["notes"] == [f"input folder {tmp_path / 'unmounted'} does not exist: no recordings were looked for",
                              f"no transcripts at all in {tmp_path / 'tx'}: if calls were expected, check that the "
                              "folder is there and mounted"]  # an empty transcripts share is said too
    # a transcripts-only centre's callintel.yaml names no recordings folder: the default one missing is no news
    (tmp_path / "tx-only.yaml").write_text(f"transcripts: tx\nout: out\nsignals: {ROOT / 'signals'}\n")
    quiet = flows.nightly(config=str(tmp_path / "tx-only.yaml"))
    assert quiet["notes"] == [f"no transcripts at all in {tmp_path / 'tx'}: if calls were expected, check that the "
                              "folder is there and mounted"]

    (tmp_path / "mount").mkdir()  # a mount point with the share not mounted on it: an empty folder
    empty = flows.nightly(input=str(tmp_path / "mount"), out=str(tmp_path / "out"), signals=str(ROOT / "signals"))
    assert (empty["status"], empty["counts"]["found"]) == ("ok", 0)
    assert empty["notes"] == [f"no recordings at all in {tmp_path / 'mount'}: if calls were expected, check that "
                              "the folder is there and mounted"]


def test_what_arrives_a_night_after_its_recording_is_not_silently_dropped(tmp_path, prefect_harness):
    """The recording was stored on a night without its metadata (so under a hash id), or its transcript came
    later: the stored call is kept (nothing is stored twice), and the run says so, naming the file."""
    import flows

    rec = recordings(tmp_path / "rec", n=1)
    metadata = (rec / "metadata.csv").read_text()
    (rec / "metadata.csv").unlink()
    tx, out = tmp_path / "tx", tmp_path / "out"
    tx.mkdir()
    night = dict(input=str(rec), transcripts_dir=str(tx), out=str(out), workers=1, progress=False,
                 signals=str(ROOT / "signals"))
    first = flows.nightly(**night)
    (stored,) = Store(out).read("calls", ["call_id"]).column("call_id").to_pylist()
    assert stored != "c-0" and first["counts"]["transcribed"] == 1  # no metadata: an id from the audio's hash

    (rec / "metadata.csv").write_text(metadata)  # names day0/call0.wav c-0
    (tx / "late.json").write_text(json.dumps({"call_id": stored, "started_at": "2026-11-09T10:00:00",
                                              "utterances": [{"speaker": "agent", "start_s": 0, "end_s": 1,
                                                              "text": "hello"}]}))
    second = flows.nightly(**night)
    assert (second["counts"]["transcribed"], second["counts"]["imported"], second["failures"]) == (0, 0, [])
    assert Store(out).read("calls", ["call_id"]).column("call_id").to_pylist() == [stored]
    assert f"day0/call0.wav: metadata now names it c-0, but it was stored as {stored} on an earlier night, " \
           "with that night's metadata; the stored call was kept" in second["notes"]
    assert f"late.json: call {stored} was stored from its recording day0/call0.wav on an earlier night; that call " \
           "was kept and this transcript not used" in second["notes"]


def test_deployment_runs_nightly_on_the_configured_cron(tmp_path):
    import flows
    import tzlocal
    from pipeline.config import load_config

    path = tmp_path / "callintel.yaml"
    path.write_text("schedule:\n  cron: '30 1 * * 1-5'\n")
    dep = flows.deployment(load_config(path), str(path))
    (schedule,) = dep.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 1 * * 1-5", tzlocal.get_localzone_name())
    assert dep.name == "nightly" and dep.parameters == {"config": str(path)}
    default = flows.deployment(load_config(ROOT / "callintel.yaml"), None)
    assert default.schedules[0].schedule.cron == "0 2 * * *"


def test_only_flows_py_imports_prefect():
    """Product code stays free of Prefect (benchmarks may time the flow itself)."""
    sources = [p for d in ("pipeline", "models") for p in (ROOT / d).rglob("*.py")]
    offenders = [p.name for p in sources if re.search(r"^\s*(import|from)\s+prefect", p.read_text(), re.M)]
    assert sources and offenders == []
    assert re.search(r"^from prefect import", (ROOT / "flows.py").read_text(), re.M)


def test_changed_signals_retag_the_archive_without_transcribing(tmp_path, prefect_harness):
    import flows

    tx = transcripts(tmp_path / "tx")
    signals = tmp_path / "signals"
    signals.mkdir()
    (signals / "lib.yaml").write_text("signals:\n  - id: greeting\n    speaker: agent\n    phrases: [thanks for calling]\n")
    out = tmp_path / "out"
    first = flows.nightly(input=str(tmp_path / "none"), transcripts_dir=str(tx), out=str(out), signals=str(signals))
    assert (first["counts"]["imported"], first["counts"]["tagged"], first["counts"]["retagged"]) == (1, 1, 0)
    assert Store(out).read("signal_hits").column("signal_id").to_pylist() == ["greeting"]

    (signals / "lib.yaml").write_text("signals:\n  - id: app_crash\n    speaker: customer\n"
                                      "    patterns: [[{LEMMA: app}, {OP: '?'}, {LEMMA: crash}]]\n"
                                      "categories:\n  - id: product_issue\n    any: [app_crash]\n")
    second = flows.nightly(input=str(tmp_path / "none"), transcripts_dir=str(tx), out=str(out), signals=str(signals))
    assert (second["counts"]["imported"], second["counts"]["transcribed"], second["counts"]["retagged"]) == (0, 0, 1)
    hits = Store(out).read("signal_hits").to_pylist()
    assert [(h["call_id"], h["signal_id"], h["utt_idx"], h["matched_text"]) for h in hits] == [
        ("t-1", "app_crash", 1, "app keeps crashing")]
    with Store(out).connect_read_only() as con:
        assert con.execute("SELECT category_id FROM call_categories").fetchall() == [("product_issue",)]
        versions = con.execute("SELECT signals_hash, tagged, retagged FROM runs ORDER BY started_at, run_id").fetchall()
        trends = con.execute("SELECT signal_id, day, calls, total_calls, share FROM signal_trends").fetchall()
    assert [v[1:] for v in versions] == [(1, 0), (0, 1)] and versions[0][0] != versions[1][0]
    assert [(t[0], str(t[1]), t[2], t[3], t[4]) for t in trends] == [("app_crash", "2026-11-10", 1, 1, 1.0)]


def test_stage_tasks_are_handed_their_rows_as_they_are_not_walked_by_prefect(prefect_harness):
    """Prefect walks a plain task's arguments element by element, resolving any future it finds: 38 s of a
    re-score over 200,000 stored utterances. A stage's rows are whole tables in memory, passed untouched."""
    import flows
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    received = []

    @task
    def two():
        return 2

    stage = flows._Whole(task(lambda rows: received.append(rows), name="probe", cache_policy=NO_CACHE))
    plain = task(lambda rows: received.append(rows), name="plain", cache_policy=NO_CACHE)

    @flow
    def night() -> bool:
        future = two.submit()
        future.wait()
        rows = [{"call_id": "c-1", "n": future}]
        stage(rows)
        plain(rows)
        return received[0] is rows and received[0][0]["n"] is future and received[1][0]["n"] == 2

    # the stage got the very rows, future and all; a plain task's were walked and the future resolved
    assert night() is True
    assert all(isinstance(t, flows._Whole) for t in (flows.redact_calls, flows.enrich, flows.tag_calls,
                                                     flows.score_calls, flows.assign_topics, flows.render_pages,
                                                     flows.redact_recordings))


def test_a_call_that_cannot_be_redacted_is_not_stored_and_the_rest_are():
    import flows
    from pipeline.redact import ENTITIES

    good = {"call_id": "a", "utt_idx": 0, "text": "my card is 4111 1111 1111 1111",
            "words": [{"word": w, "start_s": i, "end_s": i + 0.5, "probability": 0.9}
                      for i, w in enumerate("my card is 4111 1111 1111 1111".split())]}
    broken = {"call_id": "b", "utt_idx": 0, "text": "call me on 206 555 0142",
              "words": [{"word": "something", "start_s": 0, "end_s": 1, "probability": 0.9}]}  # words != text
    clean, found, failed = flows.redact_calls.fn([good, broken], list(ENTITIES))
    assert [u["call_id"] for u in clean] == ["a"] and clean[0]["text"] == "my card is [CARD]" and found == {"a": 1}
    assert list(failed) == ["b"] and failed["b"].startswith("redaction failed, call not stored")


def test_serve_registers_the_nightly_deployment_on_its_cron(tmp_path, prefect_harness):
    """`callintel serve` for real: it registers `nightly/nightly` with the configured cron, then keeps serving."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    (tmp_path / "signals").mkdir()
    (tmp_path / "rec").mkdir()
    config = tmp_path / "callintel.yaml"
    config.write_text("input: rec\nschedule:\n  cron: '15 3 * * *'\n  timezone: Europe/London\n")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen([CALLINTEL, "serve", "--config", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deployment, deadline = None, time.monotonic() + 120
        while deployment is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            with get_client(sync_client=True) as client:
                try:
                    deployment = client.read_deployment_by_name("nightly/nightly")
                except Exception:  # not registered yet
                    deployment = None
        assert deployment is not None, proc.stdout.read() if proc.poll() is not None else "not registered in 120 s"
        (schedule,) = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("15 3 * * *", "Europe/London")
        assert deployment.parameters == {"config": str(config)}
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_out_folder_inside_the_transcripts_folder_is_not_read_as_transcripts(tmp_path, prefect_harness):
    """out: tr/out: the run's own JSON files (runs/, the manifest) were read as transcripts, one more failure each
    night, so every night exited 1."""
    import shutil

    import flows

    tx = tmp_path / "tr"
    tx.mkdir()
    shutil.copy(ROOT / "data/demo_transcripts/c-0001.json", tx)
    run = dict(input=str(tmp_path / "none"), transcripts_dir=str(tx), out=str(tx / "out"),
               signals=str(ROOT / "signals"))
    first = flows.nightly(**run)
    assert (first["counts"]["imported"], first["failures"]) == (1, [])
    second = flows.nightly(**run)
    assert (second["counts"]["found"], second["counts"]["imported"], second["failures"]) == (1, 0, [])
