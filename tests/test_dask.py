"""`runner: {kind: dask}`: the same nightly flow on a Dask cluster (2 workers) gives the same tables as the
local runner."""
import shutil

import yaml

from conftest import ROOT
from pipeline.store import Store
from test_flow import recordings
from test_flow_qa import add_a_signal, new_rubric_version

IGNORE = {"run_id", "created_run", "model_version"}
TABLES = {"calls": "call_id", "utterances": "call_id, utt_idx", "signal_hits": "call_id, utt_idx, signal_id",
          "call_metrics": "call_id", "scorecards": "call_id, rubric_id, rubric_version",
          "scorecard_items": "call_id, rubric_id, rubric_version, criterion_id",
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
    signals = tmp_path / "signals"
    shutil.copytree(ROOT / "signals", signals)
    common = {"input": str(inp), "transcripts": str(tx), "signals": str(signals)}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump({**common, "out": str(tmp_path / "local")}))
    local = flows.run_nightly(config=str(tmp_path / "local.yaml"), progress=False)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        (tmp_path / "dask.yaml").write_text(yaml.safe_dump({**common, "out": str(tmp_path / "dask"),
                                                            "runner": {"kind": "dask",
                                                                       "address": cluster.scheduler_address}}))
        on_dask = flows.run_nightly(config=str(tmp_path / "dask.yaml"), progress=False)
        first_pages = pages_of(tmp_path)
        new_rubric_version(signals)  # every stored call is scored again and its page rendered again
        rescored = [flows.run_nightly(config=str(tmp_path / f"{runner}.yaml"), progress=False)
                    for runner in ("local", "dask")]
        rescored_pages = pages_of(tmp_path)
        add_a_signal(signals)  # every stored call is tagged again, then scored again
        retagged = [flows.run_nightly(config=str(tmp_path / f"{runner}.yaml"), progress=False)
                    for runner in ("local", "dask")]
        retagged_pages = pages_of(tmp_path)
        with Client(cluster) as client:  # the calls were transcribed on the workers: they hold the model
            loaded = client.run(lambda: __import__("pipeline.transcribe").transcribe._MODEL is not None)
            # and the imported transcript was redacted, tagged and scored there: a worker built the run's context
            prepared = client.run(lambda: __import__("pipeline.batch").batch._SETUP is not None)
            # the recordings' pages, and every page after the new rubric version, were rendered on the cluster
            pages_there = client.run_on_scheduler(
                lambda dask_scheduler: "render_bundles" in dask_scheduler.task_prefixes)
            # and the stored calls were scored again there, from the rows this process read
            rescored_there = client.run_on_scheduler(
                lambda dask_scheduler: {"rescore_anywhere", "retag_anywhere"} <= set(dask_scheduler.task_prefixes))
    assert any(loaded.values())
    assert any(prepared.values())
    assert on_dask["counts"] == local["counts"] and on_dask["counts"]["transcribed"] == 4
    for table in TABLES:
        assert rows(tmp_path / "dask", table) == rows(tmp_path / "local", table), table
    # every call's page, the imported one rendered on a Dask worker, is the local runner's page
    assert len(first_pages["dask"]) == 5 and first_pages["dask"] == first_pages["local"]
    assert pages_there and rescored_there and rescored[0]["counts"] == rescored[1]["counts"]
    assert rescored[1]["counts"]["rescored"] == 5
    assert [f["source_path"] for f in rescored[1]["failures"]] == ["broken.wav"]  # tried again; no page failed
    pages = rescored_pages
    assert pages["dask"] == pages["local"] and pages["dask"] != first_pages["dask"]
    assert all(b"standard \xc2\xb7 version 2" in page for page in pages["dask"].values())
    assert retagged[0]["counts"] == retagged[1]["counts"] and retagged[1]["counts"]["retagged"] == 5
    # the pages the new signal changed were written, the same on both; the rest were left as they were
    assert retagged_pages["dask"] == retagged_pages["local"]
    notes = [[note for note in night["notes"] if note.startswith("scorecard pages:")] for night in retagged]
    hits = Store(tmp_path / "local").read("signal_hits", ["call_id", "signal_id"]).to_pylist()
    said = {hit["call_id"] for hit in hits if hit["signal_id"] == "account_said"}
    assert 0 < len(said) < 5
    assert notes[0] == notes[1] == [f"scorecard pages: {len(said)} written, {5 - len(said)} already up to date"]
    for table in TABLES:
        assert rows(tmp_path / "dask", table) == rows(tmp_path / "local", table), table


def pages_of(tmp_path) -> dict[str, dict]:
    return {runner: {p.relative_to(tmp_path / runner): p.read_bytes() for p in (tmp_path / runner).rglob("*.html")}
            for runner in ("local", "dask")}
