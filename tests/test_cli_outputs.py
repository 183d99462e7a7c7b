"""What the read commands print and write for a user: a file they cannot write is one line naming it (exit 2),
and a table that cut text short says so and how to see it whole."""
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from pipeline.cli import cli
from pipeline.store import Store
from pipeline.views import VIEWS

CALLS = ["c-0001", "c-0004", "c-0009"]
WRITABLE = "give a file in a folder that exists and this user can write"
EXPORTED = ("call_date,started_at,call_id,agent_id,queue,direction,duration_s,severity,n_flags,score_pct,auto_failed,"
            "flags,reasons")


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)  # a traceback fails the test


@pytest.fixture(scope="module")
def out(tmp_path_factory, prefect_harness):
    import flows

    tmp = tmp_path_factory.mktemp("outputs")
    (tmp / "tx").mkdir()
    for call_id in CALLS:
        shutil.copy(ROOT / f"data/demo_transcripts/{call_id}.json", tmp / "tx")
    summary = flows.nightly(input=str(tmp / "none"), transcripts_dir=str(tmp / "tx"), out=str(tmp / "out"),
                            signals=str(ROOT / "signals"))
    assert not summary["failures"]
    return tmp / "out"


def test_a_plot_that_cannot_be_written_is_one_line(out, tmp_path):
    missing = tmp_path / "no-such-folder" / "t.png"
    shown = invoke("trends", "--plot", str(missing), "--out", str(out))
    assert shown.exit_code == 2
    assert shown.output.splitlines()[-1] == f"Error: --plot {missing}: cannot write it (No such file or directory); {WRITABLE}"
    unknown = invoke("trends", "--plot", str(tmp_path / "t.txt"), "--out", str(out))
    assert unknown.exit_code == 2
    said = unknown.output.splitlines()[-1]
    assert said.startswith(f"Error: --plot {tmp_path / 't.txt'}: Format 'txt' is not supported") and said.endswith(
        "; end the name in .png")
    bare = invoke("trends", "--plot", str(tmp_path / "t"), "--out", str(out))  # matplotlib adds .png: say so
    assert bare.exit_code == 0 and bare.output.splitlines()[-1] == f"plot: {tmp_path / 't.png'}"
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG" and list(tmp_path.iterdir()) == [tmp_path / "t.png"]


def test_trends_say_the_dates_of_their_window_and_how_old_its_last_day_is(out):
    """The window ends on the last day with calls (c-0009's, 2026-11-18), not today: said, with its dates, so a
    night whose recordings stopped coming does not look current."""
    from datetime import date

    old = (date.today() - date(2026, 11, 18)).days
    assert invoke("trends", "--days", "1", "--out", str(out)).output.splitlines()[0] == (
        f"No emerging signals on 2026-11-18 (the last day with calls, {old} days ago).")
    assert invoke("trends", "--days", "2", "--out", str(out)).output.splitlines()[0] == (
        f"No emerging signals in the 2 days 2026-11-17 to 2026-11-18 (the last day with calls, {old} days ago).")


def test_trends_with_nothing_to_show_say_why(tmp_path, prefect_harness):
    """After a night whose call says no signal: not 'run callintel run first', which was done."""
    import json

    import flows

    (tmp_path / "tx").mkdir()
    (tmp_path / "tx/quiet.json").write_text(json.dumps({"call_id": "quiet", "started_at": "2026-11-20T10:00:00",
                                                         "utterances": [
        {"speaker": "agent", "start_s": 0, "end_s": 2, "text": "Blue sky."},
        {"speaker": "customer", "start_s": 2, "end_s": 4, "text": "Green grass."}]}))
    out = tmp_path / "out"
    flows.nightly(input=str(tmp_path / "none"), transcripts_dir=str(tmp_path / "tx"), out=str(out),
                  signals=str(ROOT / "signals"))
    shown = invoke("trends", "--out", str(out))
    assert (shown.exit_code, shown.output) == (0, "No signals in the 1 stored call yet: no configured signal was "
                                                  "said in them.\n")
    store = Store(tmp_path / "empty")
    with store.lock():
        store.publish(VIEWS)  # as a night that found nothing leaves it
    before = invoke("trends", "--out", str(tmp_path / "empty"))
    assert (before.exit_code, before.output) == (2, f"Error: no calls stored yet in {tmp_path / 'empty'}: run "
                                                    "`callintel run` first\n")


def test_a_damaged_database_file_is_one_line_saying_the_next_run_rebuilds_it(out, tmp_path):
    """A truncated callintel.duckdb (a full disk, a bad copy): scorecard gave a traceback, and sql called it another
    release's file."""
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "callintel.duckdb").write_bytes(b"")
    said = (f"Error: {copy / 'callintel.duckdb'}: cannot be opened (IO Error: The file \"{copy / 'callintel.duckdb'}\" "
            "exists, but it is not a valid DuckDB database file!); the next `callintel run` builds it again from the "
            "stored Parquet files (nothing is lost)\n")
    for args in (["scorecard", "c-0001"], ["sql", "SELECT count(*) AS n FROM calls"], ["flagged"]):
        shown = invoke(*args, "--out", str(copy))
        assert (shown.exit_code, shown.output) == (2, said), args
    store = Store(copy)
    with store.lock():
        store.publish(VIEWS)  # what a run ends with
    assert invoke("sql", "SELECT count(*) AS n FROM calls", "--out", str(copy)).output.split() == ["n", str(len(CALLS))]


def test_an_empty_query_is_a_usage_error(out):
    for said in ("", "  ", ";"):
        shown = invoke("sql", said, "--out", str(out))
        assert (shown.exit_code, shown.output) == (2, 'Error: no query given; e.g. callintel sql "SELECT count(*) AS '
                                                      'calls FROM calls"\n')


def test_flagged_for_an_agent_no_call_has_says_so_and_names_the_nearest(out):
    """A mistyped agent read like an agent with nothing to coach."""
    assert invoke("flagged", "--agent", "a_ruis", "--out", str(out)).output == (
        "no flagged calls match (no stored call has agent_id 'a_ruis'; the nearest: a_ruiz, a_okafor)\n")
    assert invoke("flagged", "--agent", "a_ruiz", "--severity", "high", "--since", "2099-01-01", "--out",
                  str(out)).output == "no flagged calls match\n"  # a_ruiz's calls are stored: nothing to add
    assert invoke("flagged", "--agent", "A_RUIS", "--out", str(out)).output == (  # nearest in any case
        "no flagged calls match (no stored call has agent_id 'A_RUIS'; the nearest: a_ruiz, a_okafor)\n")
    exported = CliRunner().invoke(cli, ["flagged", "--agent", "a_ruis", "--format", "csv", "--out",
                                         str(out)])
    assert exported.stdout.splitlines() == [EXPORTED] and "the nearest: a_ruiz" in exported.stderr  # a script reads


def test_trends_of_signals_and_topics_at_once_is_refused(out):
    shown = invoke("trends", "--signals", "--topics", "--out", str(out))
    assert (shown.exit_code, shown.output) == (2, "Error: --topics and --signals: give one of them (signals when "
                                                  "neither)\n")
    assert invoke("trends", "--signals", "--out", str(out)).output == invoke("trends", "--out", str(out)).output


def test_a_scorecard_page_that_cannot_be_written_is_one_line(out):
    page = Path(invoke("scorecard", "c-0001", "--html", "--out", str(out)).output.strip())
    shutil.rmtree(page.parent)
    page.parent.write_text("a file where the day's folder goes")
    try:
        shown = invoke("scorecard", "c-0001", "--html", "--out", str(out))
    finally:
        page.parent.unlink()
    assert shown.exit_code == 2
    assert shown.output == f"Error: scorecard page {page}: cannot write it (File exists); ask for it as a user who " \
                           f"can write in {out}\n"
    assert invoke("scorecard", "c-0001", "--html", "--out", str(out)).output == f"{page}\n"  # written once it can be


def test_a_table_that_cut_text_short_says_so(out):
    said = "SELECT text FROM utterances WHERE call_id = 'c-0001' ORDER BY utt_idx LIMIT 3"
    table = invoke("sql", said, "--out", str(out)).output.splitlines()
    with Store(out).connect_read_only() as con:
        whole = [r[0] for r in con.execute(said).fetchall()]
    assert max(map(len, whole)) > 60 and max(map(len, table[1:4])) <= 60
    assert table[4:] == ["(text longer than 60 characters is cut short here; --format csv or --format json shows it "
                         "whole)"]
    assert invoke("sql", "SELECT call_id FROM calls", "--out", str(out)).output.splitlines() == [
        "call_id", *(f" {c}" for c in CALLS)]  # nothing cut, nothing said
    flagged = invoke("flagged", "--out", str(out)).output.splitlines()
    assert flagged[-1] == ("(text longer than 120 characters is cut short here; --format csv or --format json shows "
                           "it whole)")


def test_a_missing_value_is_null_in_every_column(out):
    """pandas would print NaN for a missing text or number and None for a missing JSON: an analyst reads SQL's NULL."""
    said = ("SELECT 'c-x' AS call_id, CAST(NULL AS VARCHAR) AS queue, CAST(NULL AS DOUBLE) AS score, "
            "CAST(NULL AS JSON) AS extra, CAST(NULL AS DATE) AS call_date")
    lines = invoke("sql", said, "--out", str(out)).output.splitlines()
    assert [line.split() for line in lines] == [["call_id", "queue", "score", "extra", "call_date"],
                                                ["c-x", "NULL", "NULL", "NULL", "NULL"]]


def test_a_new_signal_emerges_in_two_calls_not_in_two_hits_of_one_call():
    """One caller naming a competitor twice was listed as an emerging signal: a new signal needs 2 calls that day
    (a new topic 2 turns, since it exists only because turns clustered). A real DuckDB runs the view's SQL."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE calls AS SELECT * FROM (VALUES ('c1', DATE '2026-11-01'), ('c2', DATE '2026-11-01'), "
                "('c3', DATE '2026-11-02'), ('c4', DATE '2026-11-03'), ('c5', DATE '2026-11-03')) "
                "t(call_id, call_date)")
    con.execute("CREATE TABLE signal_hits AS SELECT * FROM (VALUES ('greeting', 'c1', DATE '2026-11-01'), "
                "('competitor_mention', 'c3', DATE '2026-11-02'), ('competitor_mention', 'c3', DATE '2026-11-02'), "
                "('outage', 'c4', DATE '2026-11-03'), ('outage', 'c5', DATE '2026-11-03')) "
                "t(signal_id, call_id, call_date)")
    rows = con.execute(f"SELECT signal_id, day, hits, calls FROM ({VIEWS['signal_trends']}) WHERE emerging").fetchall()
    assert [(s, str(d), hits, calls) for s, d, hits, calls in rows] == [("outage", "2026-11-03", 2, 2)]
