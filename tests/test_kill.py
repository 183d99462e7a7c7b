"""SIGKILL late in a run (after the calls are stored): while the topic model is saved, while HTML pages are
written, while DuckDB is published. The rerun ends with exactly the rows and pages of an uninterrupted run."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from pipeline.store import Store

CALLINTEL = str(Path(sys.executable).with_name("callintel"))
# Columns that name the run (or the model fit) that wrote a row differ between any two runs by design.
RUN_COLUMNS = {"run_id", "created_run", "model_version"}
TABLES = {"calls": "call_id", "utterances": "call_id, utt_idx", "signal_hits": "call_id, utt_idx, signal_id",
          "call_metrics": "call_id", "scorecards": "call_id", "scorecard_items": "call_id, criterion_id",
          "flags": "call_id, flag_id", "utterance_topics": "call_id, utt_idx", "topics": "topic_id"}


def rows(out: Path, table: str) -> list:
    with Store(out).connect_read_only() as con:
        columns = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall() if c[0] not in RUN_COLUMNS]
        return con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {TABLES[table]}").fetchall()


def _model_saved(out: Path) -> bool:
    return any((out / "models").glob("*.joblib*"))


def _writing_pages(out: Path) -> bool:
    return any((out / "scorecards").rglob("*.html"))


def _publishing(out: Path) -> bool:
    return (out / "callintel.duckdb.next").exists()


@pytest.mark.parametrize("kill_when", [_model_saved, _writing_pages, _publishing],
                         ids=["saving-topic-model", "writing-pages", "publishing-duckdb"])
def test_a_run_killed_after_its_calls_are_stored_recovers_exactly(tmp_path, prefect_harness, kill_when):
    import flows
    from prefect.settings import PREFECT_API_URL

    tx = tmp_path / "tx"
    shutil.copytree(ROOT / "data/demo_transcripts", tx)
    clean = tmp_path / "clean"
    flows.nightly(input=str(tmp_path / "none"), transcripts_dir=str(tx), out=str(clean), signals=str(ROOT / "signals"))

    killed = tmp_path / "killed"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    cmd = [CALLINTEL, "run", "--transcripts", str(tx), "--input", str(tmp_path / "none"), "--out", str(killed),
           "--signals", str(ROOT / "signals"), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not kill_when(killed):
        time.sleep(0.002)
    assert proc.poll() is None, "the run finished before the kill point"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for table in TABLES:
        assert rows(killed, table) == rows(clean, table), table
    pages = sorted(p.relative_to(clean / "scorecards") for p in (clean / "scorecards").rglob("*.html"))
    assert pages and sorted(p.relative_to(killed / "scorecards") for p in (killed / "scorecards").rglob("*.html")) == pages
    assert not list(killed.rglob("*.tmp")) and not (killed / "callintel.duckdb.next").exists()
    fitted = {Store(killed).meta()[key] for key in ("topic_model", "topic_vectors")}  # the model, its vectors
    assert {p.name for p in (killed / "models").iterdir()} == fitted and None not in fitted
