"""The command line: examples in every --help, one-line errors, exit codes of the README."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from pipeline.cli import cli
from pipeline.store import Store

COMMANDS = sorted(cli.commands)


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"callintel {command}" in result.output


def test_every_option_has_help_text():
    for name, command in cli.commands.items():
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"callintel {name} {param.opts[0]} has no help text"


def test_readme_documents_every_command():
    readme = (ROOT / "README.md").read_text()
    assert [c for c in COMMANDS if f"callintel {c}" not in readme] == []


def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "callintel.yaml").write_text("out: results\nasr:\n  beam_size: 0\n")
    result = invoke("run", "--config", str(tmp_path / "callintel.yaml"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path / 'callintel.yaml'}:3: asr.beam_size: must be >= 1 (it is 0)"]
    assert not (tmp_path / "results").exists()


def test_missing_input_folder_is_a_usage_error(tmp_path):
    result = invoke("run", "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.output == (f"Error: input folder {tmp_path / 'nope'} does not exist; give `callintel run` --input "
                             "DIR (recordings) or --transcripts DIR, or set input: or transcripts: in callintel.yaml\n")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("setting, said", [
    ("input", "input folder {} does not exist; give `callintel run` --input DIR"),
    ("transcripts", "transcripts folder {} does not exist"),
    ("signals", "signals folder {} does not exist (an empty folder is valid)")])
def test_a_missing_folder_set_in_callintel_yaml_is_named_by_its_line(tmp_path, setting, said):
    """The line to edit (a typo, a share not mounted), not only the folder it resolved to."""
    config = tmp_path / "callintel.yaml"
    folders = {"input": ".", "signals": str(ROOT / "signals"), "out": "out", setting: "nowhere"}
    config.write_text("# the night's folders\n" + "".join(f"{key}: {value}\n" for key, value in folders.items()))
    line = list(folders).index(setting) + 2
    result = invoke("run", "--config", str(config))
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert result.output.startswith(f"Error: {config}:{line}: {said.format(tmp_path / 'nowhere')}")
    given = invoke("run", "--config", str(config), f"--{setting}", str(tmp_path / "elsewhere"))
    assert given.output.startswith(f"Error: {said.format(tmp_path / 'elsewhere')}")  # the option, not the file


def test_an_output_folder_that_cannot_be_written_or_is_busy_is_refused_before_any_work(tmp_path):
    """Said in one line at once, not after Prefect's start-up and a traceback (exit 2, as usage mistakes)."""
    (tmp_path / "rec").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    common = ["--input", str(tmp_path / "rec"), "--signals", str(ROOT / "signals"), "--quiet"]
    under_a_file = invoke("run", *common, "--out", str(tmp_path / "a-file" / "out"))
    assert under_a_file.exit_code == 2 and len(under_a_file.output.strip().splitlines()) == 1
    assert under_a_file.output == (f"Error: --out {tmp_path / 'a-file' / 'out'}: cannot create the output folder "
                                   "(Not a directory); give a folder this user can write\n")
    (tmp_path / "callintel.yaml").write_text(f"input: rec\nsignals: {ROOT / 'signals'}\nout: a-file\n")  # a file
    from_file = invoke("run", "--config", str(tmp_path / "callintel.yaml"), "--quiet")
    assert from_file.output == (f"Error: {tmp_path / 'callintel.yaml'}:3: out: {tmp_path / 'a-file'}: cannot create "
                                "the output folder (File exists); give a folder this user can write\n")
    store = Store(tmp_path / "out")
    with store.lock():  # another run writing there
        busy = invoke("run", *common, "--out", str(tmp_path / "out"))
    assert busy.exit_code == 75 and len(busy.output.strip().splitlines()) == 1  # busy: try again, not a mistake
    assert "another callintel run is writing here (pid" in busy.output and "--wait" in busy.output
    assert store.holder() is None  # and once it has finished, nobody holds it
    (store.parquet).mkdir(parents=True)
    (store.parquet / "_manifest.json").write_text('{"version": 99, "meta": {}, "parts": {}}')  # a future release's
    newer = invoke("run", *common, "--out", str(tmp_path / "out"))
    assert newer.exit_code == 2 and len(newer.output.strip().splitlines()) == 1
    assert "written by a newer release of callintel" in newer.output


def test_two_runs_started_together_one_writes_and_the_other_is_refused_before_prefect_starts(tmp_path):
    """Each checked the folder before Prefect's ~15 s start-up and took the lock after it, so both started a
    server and the second ended in a traceback. `run` now holds the lock from before Prefect starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    cmd = [str(Path(sys.executable).with_name("callintel")), "run", "--transcripts", str(ROOT / "data/demo_transcripts"),
           "--input", str(tmp_path / "none"), "--out", str(tmp_path / "out"), "--signals", str(ROOT / "signals")]
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    (winner, won), (loser, lost) = sorted(((p, p.communicate(timeout=600)) for p in runs), key=lambda r: r[0].returncode)
    assert (winner.returncode, loser.returncode) == (0, 75)
    assert "new calls   10 (0 transcribed, 10 imported)" in won[0]
    assert lost[0] == "" and re.fullmatch(
        re.escape(f"Error: {tmp_path / 'out'}: another callintel run is writing here (pid {winner.pid}, started ")
        + r"[\d-]+ [\d:]+" + re.escape("); wait for it to finish, use --wait SECONDS, or a different --out\n"), lost[1])


def test_check_says_what_the_out_folders_disk_has_free_and_if_it_cannot_be_written(tmp_path, small_disk):
    """A night that fills its disk stops there: check shows the room before the night. The out folder need not
    exist yet (the night makes it); its disk is the one of the folder it would be made in."""
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)
    config = tmp_path / "callintel.yaml"
    config.write_text(f"input: {ROOT / 'data/demo'}\nout: {small_disk / 'night/out'}\nsignals: {ROOT / 'signals'}\n")
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == f"out OK: {small_disk / 'night/out'}, 1.0 MB free on its disk"
    assert not (small_disk / "night").exists()

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (f"Error: out {small_disk / 'night/out'}: this user cannot write there; "
                                              "give a folder this user can write")
    # a file where a folder goes: `run` refuses it, and check said "out OK" (root may write to the file's folder)
    (tmp_path / "a-file").write_text("not a folder")
    config.write_text(f"input: {ROOT / 'data/demo'}\nout: {tmp_path / 'a-file/out'}\nsignals: {ROOT / 'signals'}\n")
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 2 and result.output.splitlines()[-1] == (
        f"Error: out {tmp_path / 'a-file/out'}: cannot create the output folder (Not a directory); give a folder "
        "this user can write")


def test_check_validates_without_writing(tmp_path, monkeypatch):
    result = invoke("check", "--config", str(ROOT / "callintel.yaml"))
    assert result.exit_code == 0 and result.output.startswith("config OK")
    assert "centre's zone this machine's\n" in result.output  # the shipped config sets none: calls' days are local
    assert "topics OK: embedding model" in result.output
    # a night would stop on a cache folder it cannot write: check says so first, naming the fix
    from models import embedding

    monkeypatch.setenv("CALLINTEL_CACHE", str(tmp_path / "no" / "cache"))
    (tmp_path / "no").write_text("a file, not a folder")
    embedding.encoder.cache_clear()
    try:
        unwritable = invoke("check", "--config", str(ROOT / "callintel.yaml"))
    finally:
        embedding.encoder.cache_clear()
    assert unwritable.exit_code == 2 and "CALLINTEL_CACHE" in unwritable.output
    (tmp_path / "callintel.yaml").write_text("signals: nowhere\ninput: .\n")
    bad = invoke("check", "--config", str(tmp_path / "callintel.yaml"))
    assert bad.exit_code == 2 and f"signals folder {tmp_path / 'nowhere'} does not exist" in bad.output
    named = invoke("check", "--config", str(tmp_path / "callintel.yaml"), "--signals", str(tmp_path / "elsewhere"))
    assert named.exit_code == 2 and f"signals folder {tmp_path / 'elsewhere'} does not exist" in named.output
    # a model that is not here: every recording would fail at 2 a.m. with a worker crash
    (tmp_path / "callintel.yaml").write_text(f"signals: {ROOT / 'signals'}\ninput: .\nasr:\n  model: {tmp_path}/m\n")
    no_model = invoke("check", "--config", str(tmp_path / "callintel.yaml"))
    assert no_model.exit_code == 2
    assert no_model.output.strip() == f"Error: {tmp_path / 'callintel.yaml'}:4: asr.model folder {tmp_path}/m does not exist"
    # a language by its name: faster-whisper only put it right at run time, the bundled model knowing English alone
    (tmp_path / "callintel.yaml").write_text(f"signals: {ROOT / 'signals'}\ninput: .\nasr:\n  language: english\n")
    named = invoke("check", "--config", str(tmp_path / "callintel.yaml"))
    assert (named.exit_code, named.output) == (2, f"Error: {tmp_path / 'callintel.yaml'}:4: asr.language 'english' is "
                                                  "not a language code Whisper knows: write en (English), es, fr, de, "
                                                  "...\n")


def test_check_says_which_metadata_rows_the_night_will_refuse(tmp_path):
    demo = (ROOT / "data/demo/metadata.csv").read_text().splitlines()
    shipped = invoke("check", "--config", str(ROOT / "callintel.yaml")).output
    assert f"metadata OK: 1 file(s) in {ROOT / 'data/demo'} describe {len(demo) - 1} recording(s)\n" in shipped
    (tmp_path / "2026-11-20").mkdir()
    shutil.copy(ROOT / "data/demo" / demo[1].split(",")[0], tmp_path / "2026-11-20" / "a.wav")
    (tmp_path / "2026-11-20" / "metadata.csv").write_text("file,call_id\na.wav,c-1\nb.wav,c-2\na.wav,c-3\n")
    config = f"signals: {ROOT / 'signals'}\ninput: {tmp_path}\nout: {tmp_path / 'out'}\n"
    (tmp_path / "callintel.yaml").write_text(config)
    checked = invoke("check", "--config", str(tmp_path / "callintel.yaml"))
    assert checked.exit_code == 1  # the night runs, and exits 1 for these rows: so does check
    assert (f"WARNING: metadata: 1 file(s) in {tmp_path} describe 1 recording(s); 2 problem(s), each a failure every "
            "night until fixed (a recording a refused row names waits for the fix):\n"
            "  2026-11-20/metadata.csv line 3: file 'b.wav' not found\n"
            "  2026-11-20/metadata.csv line 4: file 'a.wav' already described (first on line 2)\n") in checked.output


def test_sql_is_read_only_and_reports_errors_in_one_line(tmp_path):
    missing = invoke("sql", "SELECT 1", "--out", str(tmp_path))
    assert missing.exit_code == 2 and "run `callintel run` first" in missing.output
    store = Store(tmp_path)
    with store.lock():
        store.publish()
    ok = invoke("sql", "SELECT count(*) AS n FROM calls", "--out", str(tmp_path), "--format", "csv")
    assert ok.exit_code == 0 and ok.output == "n\n0\n"
    empty = invoke("sql", "SELECT run_id, error FROM failures", "--out", str(tmp_path))  # not pandas' repr
    assert empty.exit_code == 0 and empty.output == "run_id  error\n(no rows)\n"
    write = invoke("sql", "DROP TABLE calls", "--out", str(tmp_path))
    assert write.exit_code == 2 and "read-only" in write.output and len(write.output.strip().splitlines()) == 1
    typo = invoke("sql", "SELEC 1", "--out", str(tmp_path))
    assert typo.exit_code == 2 and typo.output.startswith("Error: query failed:")
    # a misspelt name: DuckDB's own hint says what was meant, on the one line
    column = invoke("sql", "SELECT call_id, duraton_s FROM calls", "--out", str(tmp_path))
    assert column.exit_code == 2 and len(column.output.strip().splitlines()) == 1
    assert 'not found in FROM clause!; Candidate bindings: "duration_s"' in column.output
    table = invoke("sql", "SELECT * FROM call", "--out", str(tmp_path))
    assert table.exit_code == 2 and table.output.strip().endswith('Did you mean "calls"?')
    # nor writes or reads files outside it: the calls' paths and metadata copied anywhere on disk, /etc read
    leak, secret = tmp_path / "leak.csv", tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for query in (f"COPY (SELECT * FROM calls) TO '{leak}'", f"SELECT * FROM read_csv('{secret}')",
                  f"ATTACH '{tmp_path / 'other.db'}' AS other"):
        refused = invoke("sql", query, "--out", str(tmp_path))
        assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1, query
        assert "file system operations are disabled" in refused.output and "--format csv > rows.csv" in refused.output
    assert not leak.exists() and not (tmp_path / "other.db").exists()


def test_signals_test_says_when_a_signal_is_the_other_sides():
    said = "I want to cancel my subscription"
    agent = invoke("signals", "test", said, "--speaker", "agent", "--signals", str(ROOT / "signals"))
    assert agent.exit_code == 0 and "no signal fires" not in agent.output
    assert "not for  cancel_intent" in agent.output and "the customer's, not the agent's" in agent.output
    customer = invoke("signals", "test", said, "--speaker", "customer", "--signals", str(ROOT / "signals"))
    assert "fires    cancel_intent" in customer.output and "not for" not in customer.output


def test_signals_test_says_a_windowed_signal_counts_only_there(tmp_path):
    (tmp_path / "lib.yaml").write_text("signals:\n  - id: goodbye\n    phrases: [goodbye]\n    window: {last_s: 30}\n"
                                       "  - id: hello\n    phrases: [hello]\n    window: {first_s: 15.5}\n")
    out = invoke("signals", "test", "hello and goodbye", "--signals", str(tmp_path)).output
    assert "fires    hello                    on 'hello' (speaker any, only in the first 15.5 s of a call)" in out
    assert "fires    goodbye                  on 'goodbye' (speaker any, only in the last 30 s of a call)" in out


def test_check_names_what_a_rubric_applies_to(tmp_path):
    """A rubric for inbound calls claims every inbound call: check used to call it the default."""
    import shutil

    shutil.copytree(ROOT / "signals", tmp_path / "signals")
    rubric = (tmp_path / "signals" / "rubric.yaml").read_text().replace("id: standard", "id: inbound_standard", 1)
    (tmp_path / "signals" / "inbound.yaml").write_text(rubric.replace("rubric:\n", "rubric:\n  applies_to: "
                                                                      "{direction: [inbound]}\n", 1))
    checked = invoke("check", "--config", str(ROOT / "callintel.yaml"), "--signals", str(tmp_path / "signals"))
    assert checked.exit_code == 0, checked.output
    assert "rubric OK: inbound_standard v1 (direction inbound)" in checked.output
    assert "rubric OK: standard v1 (default)" in checked.output and "no rubric" not in checked.output
    (tmp_path / "empty").mkdir()  # valid, but what a --signals pointed at the wrong folder also gives
    empty = invoke("check", "--config", str(ROOT / "callintel.yaml"), "--signals", str(tmp_path / "empty"))
    assert empty.exit_code == 0 and (f"WARNING: no rubric in {tmp_path / 'empty'}: no call will be scored (see "
                                     'README.md, "QA scorecards, flags and the coaching queue")') in empty.output


def test_a_scorecard_whose_every_criterion_is_na_has_no_verdict():
    from pipeline.scorecard import _card_lines

    card = {"rubric_id": "standard", "rubric_version": 2, "auto_failed": False, "passed": None, "pct": None,
            "points": 0.0, "max_points": 0.0}
    assert _card_lines(card, [])[0] == "standard v2: n.a.  NO VERDICT (every criterion n.a.)  (0 of 0 points)"


def test_check_and_run_warn_of_personal_data_the_redaction_leaves_in(tmp_path, prefect_harness):
    """`entities: []` switched every redaction off, cards included, and check said only "config OK". A warning,
    not an error: a centre may redact upstream."""
    config = tmp_path / "callintel.yaml"
    (tmp_path / "tx").mkdir()
    shutil.copy(ROOT / "data/demo_transcripts/c-0001.json", tmp_path / "tx")
    warned = {}
    for entities in ("[]", "[ssn, email, dob]", "[card, ssn, phone, email, dob]",
                     "[card, ssn, bank, pin, phone, email, dob]"):
        config.write_text(f"input: .\nsignals: {ROOT / 'signals'}\nredaction:\n  entities: {entities}\n")
        checked = invoke("check", "--config", str(config))
        assert checked.exit_code == 0, checked.output
        warned[entities] = [line for line in checked.output.splitlines() if line.startswith("WARNING")]
    assert warned == {
        "[]": [f"WARNING: {config}: redaction.entities is empty, so nothing is redacted: card numbers, social security "
               "and national insurance numbers, bank account numbers and sort codes, PINs and passcodes, phone "
               "numbers, email addresses and dates of birth will be stored as spoken; PCI-DSS forbids storing card "
               "numbers"],
        "[ssn, email, dob]": [f"WARNING: {config}: redaction.entities leaves out card, bank, pin, phone: card "
                              "numbers, bank account numbers and sort codes, PINs and passcodes and phone numbers "
                              "will be stored as spoken; PCI-DSS forbids storing card numbers"],
        # a configuration written before bank details and PINs were redacted is told of them
        "[card, ssn, phone, email, dob]": [f"WARNING: {config}: redaction.entities leaves out bank, pin: bank "
                                           "account numbers and sort codes and PINs and passcodes will be stored "
                                           "as spoken"],
        "[card, ssn, bank, pin, phone, email, dob]": []}
    config.write_text(f"input: none\ntranscripts: tx\nout: out\nsignals: {ROOT / 'signals'}\nredaction:\n  entities: []\n")
    ran = invoke("run", "--config", str(config), "--quiet")
    assert ran.exit_code == 0, ran.output
    assert ran.output.splitlines()[0] == warned["[]"][0]
    assert "(0 pieces of personal data redacted)" in ran.output


def test_a_database_an_older_release_published_says_what_to_do(tmp_path):
    """Before the first night after an upgrade, callintel.duckdb is the older release's: without this release's
    tables and views (here, as before the rubrics table and current_topics view were added)."""
    import json

    import duckdb

    from pipeline.schemas import TABLES
    from pipeline.views import VIEWS

    store = Store(tmp_path)
    with store.lock():
        store.publish(VIEWS)
    older = json.dumps({name: str(t.schema) for name, t in TABLES.items() if name != "rubrics"}, sort_keys=True)
    with duckdb.connect(str(store.db_path)) as con:
        con.execute("DROP VIEW current_topics")
        con.execute("DROP VIEW current_scorecards")  # it reads rubrics
        con.execute("DROP TABLE rubrics")
        con.execute("UPDATE _callintel_meta SET fingerprint = $f", {"f": older})
    for args in (["topics", "list"], ["sql", "SELECT * FROM rubrics"]):
        done = invoke(*args, "--out", str(tmp_path))
        assert done.exit_code == 2 and "published by another release" in done.output, done.output
        assert "run `callintel run` once" in done.output and len(done.output.strip().splitlines()) == 1
    assert invoke("sql", "SELECT count(*) FROM calls", "--out", str(tmp_path)).exit_code == 0
    with store.lock():
        store.publish(VIEWS)  # what the first night does
    typo = invoke("sql", "SELEC 1", "--out", str(tmp_path))
    assert typo.exit_code == 2 and "another release" not in typo.output
    assert invoke("topics", "list", "--out", str(tmp_path)).exit_code == 0


def test_commands_run_outside_the_project_folder_say_no_callintel_yaml_was_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no callintel.yaml here, no data/out
    sql = CliRunner().invoke(cli, ["sql", "SELECT 1"])
    assert sql.exit_code != 0
    assert f"{tmp_path}/data/out/callintel.duckdb: no database yet" in sql.output
    assert "from the folder with your callintel.yaml, or give --out the folder your runs write to" in sql.output
    check = CliRunner().invoke(cli, ["check"])
    assert check.exit_code == 2
    # the shipped signals are used here (see the test after), so what is missing first is the input
    assert ("input folder data/demo does not exist; give `callintel run` --input DIR (recordings) or --transcripts "
            "DIR, or set input: or transcripts: in a callintel.yaml") in check.output  # check takes no folders itself


def test_a_callintel_yaml_that_names_no_signals_folder_uses_the_shipped_library(tmp_path, monkeypatch):
    """README: every key of callintel.yaml is optional. A file of two lines stopped every command with "signals
    folder .../signals does not exist", while no file at all used the shipped library."""
    (tmp_path / "tx").mkdir()
    shutil.copy(ROOT / "data/demo_transcripts/c-0001.json", tmp_path / "tx")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg/callintel.yaml").write_text("transcripts: ../tx\nout: ../out\n")
    monkeypatch.chdir(tmp_path / "cfg")
    checked = CliRunner().invoke(cli, ["check"])
    assert checked.exit_code == 0, checked.output
    assert f"signals OK ({ROOT / 'signals'}, hash" in checked.output
    (tmp_path / "cfg/callintel.yaml").write_text("transcripts: ../tx\nout: ../out\nsignals: ours\n")  # named: kept
    refused = CliRunner().invoke(cli, ["check"])
    assert refused.exit_code == 2 and f"signals folder {tmp_path / 'cfg/ours'} does not exist" in refused.output


def test_a_prefect_server_that_does_not_answer_is_one_line_before_anything_is_written(tmp_path):
    """The README's first step (`prefect server start`) forgotten, or still starting: serve printed a 114-line
    httpx traceback, and run blamed a run it had not started."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api"
    env = {**os.environ, "PREFECT_API_URL": url}
    said = (f"Error: cannot reach the Prefect server at PREFECT_API_URL={url} ([Errno 111] Connection refused); start "
            "it with `prefect server start` (it takes a few seconds to come up), ")
    callintel = str(Path(sys.executable).with_name("callintel"))
    for args, then in ((["run", "--out", str(tmp_path / "out")], "or unset PREFECT_API_URL to run on a temporary one"),
                       (["serve"], "or fix PREFECT_API_URL")):
        done = subprocess.run([callintel, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert (done.returncode, done.stderr) == (2, said + then + "\n"), args
    assert not (tmp_path / "out").exists()



def test_check_warns_of_a_flag_rule_whose_criterion_a_rubric_names_otherwise(tmp_path):
    """The shipped missing_disclosure flag tests criterion_failed: recording_disclosure. A billing rubric calling
    its disclosure `disclosure` never raises it, so billing calls without one drop out of the coaching queue."""
    signals = tmp_path / "signals"
    shutil.copytree(ROOT / "signals", signals)
    rubric = (signals / "rubric.yaml").read_text()
    assert "- id: recording_disclosure" in rubric
    (signals / "billing_rubric.yaml").write_text(rubric.replace("id: standard", "id: billing_qa").replace(
        "- id: recording_disclosure", "- id: disclosure").replace("  criteria:", "  applies_to: {queue: [billing]}\n"
                                                                  "  criteria:", 1))
    (tmp_path / "callintel.yaml").write_text(f"out: {tmp_path / 'out'}\ninput: {ROOT / 'data/demo'}\n")
    checked = invoke("check", "--config", str(tmp_path / "callintel.yaml"), "--signals", str(signals))
    assert checked.exit_code == 0, checked.output
    assert [line for line in checked.output.splitlines() if line.startswith("WARNING: flag")] == [
        "WARNING: flag missing_disclosure tests criterion_failed: recording_disclosure, which rubric billing_qa (queue "
        "billing) has no criterion of, so the calls it scores never raise that flag; name the criterion alike in "
        "every rubric, or add a criterion_failed for its own id"]
    shipped = invoke("check", "--config", str(tmp_path / "callintel.yaml"), "--signals", str(ROOT / "signals"))
    assert "WARNING: flag" not in shipped.output


def test_a_dask_scheduler_that_does_not_answer_is_named_by_its_line_before_anything_runs(tmp_path):
    """It passed `check`, and `run` waited 30 s after Prefect's start-up to print 72 lines of Dask's tracebacks."""
    import socket

    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "callintel.yaml"
    config.write_text(f"input: {ROOT / 'data/demo'}\nout: {tmp_path / 'out'}\nsignals: {ROOT / 'signals'}\n"
                      f"runner:\n  kind: dask\n  address: tcp://127.0.0.1:{port}\n")
    for command in ("check", "run"):
        said = invoke(command, "--config", str(config))
        assert said.exit_code == 2 and said.output.startswith(
            f"Error: {config}:6: runner.address: no Dask scheduler answers at tcp://127.0.0.1:{port} (Connection "
            "refused); start it (`dask scheduler`"), said.output
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_outside_a_project_folder_the_shipped_signal_library_is_used_unless_one_is_chosen(tmp_path, monkeypatch):
    """`callintel run --input X` from another folder refused itself: "signals folder signals does not exist". With
    no callintel.yaml, no --signals and no signals/ here, the shipped library is used; a folder chosen is not."""
    monkeypatch.chdir(tmp_path)
    shipped = invoke("signals", "test", "I want to cancel my subscription", "--speaker", "customer")
    assert shipped.exit_code == 0 and shipped.output.startswith("fires    cancel_intent"), shipped.output
    chosen = invoke("signals", "test", "I want to cancel", "--signals", str(tmp_path / "mine"))
    assert chosen.exit_code == 2 and f"{tmp_path / 'mine'}: signals folder does not exist" in chosen.output
