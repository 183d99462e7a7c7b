"""`runner: {kind: dask}`: the same nightly flow on a Dask cluster (2 workers) gives the same tables as the
local runner."""
import shutil

import yaml

from conftest import ROOT
from pipeline.store import Store
from test_flow import recordings

IGNORE = {"run_id", "created_run", "model_version"}
TABLES = {"calls": "call_id", "utterances": "call_id, utt_idx", "signal_hits": "call_id, utt_idx, signal_id",
          "call_metrics": "call_id", "scorecards": "call_id", "scorecard_items": "call_id, criterion_id",
          "flags": "call_id, flag_id", "utterance_topics": "call_id, utt_idx", "failures": "source_path"}


def rows(out, table):
    with Store(out).connect_read_only() as con:
        columns = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall() if c[0] not in IGNORE]
        return con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {TABLES[table]}").fetchall()


def test_dask_runner_gives_the_tables_of_the_local_runner(tmp_path, prefect_harness):
    from distributed import Client, LocalCluster

    import flows

    inp = recordings(tmp_path / "rec", n=4)
    (inp / "broken.wav").write_bytes(b"not audio")
    tx = tmp_path / "tx"
    tx.mkdir()
    shutil.copy(ROOT / "data/demo_transcripts/c-0007.json", tx)
    common = {"input": str(inp), "transcripts": str(tx), "signals": str(ROOT / "signals")}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump({**common, "out": str(tmp_path / "local")}))
    local = flows.run_nightly(config=str(tmp_path / "local.yaml"), progress=False)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        (tmp_path / "dask.yaml").write_text(yaml.safe_dump({**common, "out": str(tmp_path / "dask"),
                                                            "runner": {"kind": "dask",
                                                                       "address": cluster.scheduler_address}}))
        on_dask = flows.run_nightly(config=str(tmp_path / "dask.yaml"), progress=False)
        with Client(cluster) as client:  # the calls were transcribed on the workers: they hold the model
            loaded = client.run(lambda: __import__("pipeline.transcribe").transcribe._MODEL is not None)
            # and the imported transcript was redacted, tagged and scored there: a worker built the run's context
            prepared = client.run(lambda: __import__("pipeline.batch").batch._SETUP is not None)
    assert any(loaded.values())
    assert any(prepared.values())
    assert on_dask["counts"] == local["counts"] and on_dask["counts"]["transcribed"] == 4
    for table in TABLES:
        assert rows(tmp_path / "dask", table) == rows(tmp_path / "local", table), table
    # every call's page, the imported one rendered on a Dask worker, is the local runner's page
    pages = {runner: {p.relative_to(tmp_path / runner): p.read_bytes() for p in (tmp_path / runner).rglob("*.html")}
             for runner in ("local", "dask")}
    assert len(pages["dask"]) == 5 and pages["dask"] == pages["local"]
