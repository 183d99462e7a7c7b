"""Imported transcripts are prepared on every core: a pool of worker processes gives exactly the tables
of preparing them in the flow's own process, topic assignment by the stored model included."""
import functools
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from pipeline import batch, progress
from pipeline.store import Store
from test_dask import TABLES, rows

CALLS = sorted(p.stem for p in (ROOT / "data/demo_transcripts").glob("c-*.json"))


def two_nights(tmp_path, name, workers, commit_every=1):
    import flows

    tx = tmp_path / f"tx-{name}"
    tx.mkdir()
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"input": str(tmp_path / "none"), "transcripts": str(tx),
                                      "out": str(tmp_path / name), "signals": str(ROOT / "signals"),
                                      "import_commit_every": commit_every, "runner": {"workers": workers}}))
    summaries = []
    for night in (CALLS[:7], CALLS[7:]):
        for call_id in night:
            shutil.copy2(ROOT / f"data/demo_transcripts/{call_id}.json", tx)  # the same files: same times
        summaries.append(flows.run_nightly(config=str(config), progress=False))
    return summaries


def test_a_pool_of_workers_stores_the_tables_of_one_process(tmp_path, prefect_harness, monkeypatch):
    pools, init = [], batch.Pool.__init__

    def spy(self, workers, *args, **kwargs):
        pools.append(workers)
        init(self, workers, *args, **kwargs)

    monkeypatch.setattr(batch.Pool, "__init__", spy)
    one = two_nights(tmp_path, "one", workers=1)
    assert pools == []
    two = two_nights(tmp_path, "two", workers=2)
    assert pools == [2, 2]  # both nights had a batch per call: more than one, so a pool
    assert [s["counts"] for s in two] == [s["counts"] for s in one]
    assert [s["counts"]["imported"] for s in two] == [7, len(CALLS) - 7]
    # the second night's calls were assigned to the model the first night fitted, inside the workers
    assert Store(tmp_path / "two").meta()["topic_model"]
    for table in TABLES:
        assert rows(tmp_path / "two", table) == rows(tmp_path / "one", table), table
    with Store(tmp_path / "two").connect_read_only() as con:
        assert con.execute("SELECT count(DISTINCT call_id) FROM scorecards").fetchall()[0][0] == len(CALLS)
        second = con.execute("SELECT count(*) FROM utterance_topics WHERE call_id IN $ids",
                             {"ids": CALLS[7:]}).fetchall()[0][0]
    assert second > 0


def test_worker_batches_are_merged_into_commits_of_import_commit_every_calls(tmp_path, prefect_harness, monkeypatch):
    """Workers take a call at a time here; commits gather 3 calls each (the last of a night fewer)."""
    from pipeline.store import Store as StoreClass

    one = two_nights(tmp_path, "one", workers=1)
    commits, commit = [], StoreClass.commit

    def spy(self, run_id, seq, tables, *args, **kwargs):
        if isinstance(seq, int) and "calls" in tables:
            commits.append(len(tables["calls"]))
        return commit(self, run_id, seq, tables, *args, **kwargs)

    monkeypatch.setattr(batch, "WORK_CALLS", 1)
    monkeypatch.setattr(StoreClass, "commit", spy)
    merged = two_nights(tmp_path, "merged", workers=2, commit_every=3)
    rest = len(CALLS) - 7
    assert commits == [3, 3, 1] + [3] * (rest // 3) + ([rest % 3] if rest % 3 else [])
    assert [s["counts"] for s in merged] == [s["counts"] for s in one]
    for table in TABLES:
        assert rows(tmp_path / "merged", table) == rows(tmp_path / "one", table), table


def test_merged_batches_keep_schemas_failures_and_the_library_they_were_tagged_with():
    from pipeline.schemas import conform

    def prepared(call_ids, failed=None, signals_hash="h1"):
        calls = [{"call_id": c, "call_date": None} for c in call_ids]
        tables = {"calls": conform("calls", [{"call_id": c} for c in call_ids]), "flags": conform("flags", [])}
        return batch.Batch(calls, tables, {c: 1 for c in call_ids}, failed or {}, signals_hash)

    merged = batch.merge([prepared(["a", "b"]), prepared([], {"x.json": "redaction failed"}), prepared(["c"])])
    assert [c["call_id"] for c in merged.calls] == ["a", "b", "c"] and merged.redacted == {"a": 1, "b": 1, "c": 1}
    assert merged.tables["calls"].column("call_id").to_pylist() == ["a", "b", "c"]
    assert len(merged.tables["flags"]) == 0 and merged.tables["flags"].schema == conform("flags", []).schema
    assert merged.failed == {"x.json": "redaction failed"} and merged.signals_hash == "h1"
    # a library edited mid-run: the merged batch carries no single hash, so storing it is refused
    assert batch.merge([prepared(["a"]), prepared(["b"], signals_hash="h2")]).signals_hash == "mixed"
    groups = list(batch.gather([prepared(["a"]), prepared([], {"x.json": "?"}), prepared(["b"]), prepared(["c"])], 2))
    assert [[c["call_id"] for c in g.calls] for g in groups] == [["a"], ["b", "c"]]
    assert groups[0].failed == {"x.json": "?"}  # a refused call counts towards a commit's calls too


def test_workers_read_the_files_and_this_process_decides_which_calls_are_new(tmp_path, prefect_harness,
                                                                             monkeypatch):
    """A file per batch: on 2 workers no new transcript is parsed in the flow's process, and a re-exported stored
    call, a duplicate in a later batch and a broken file come out as reading every file in one process says."""
    import os

    import flows
    from pipeline import transcripts

    parsed, load = [], transcripts.load_transcript
    monkeypatch.setattr(transcripts, "load_transcript", lambda *args: parsed.append(args[1]) or load(*args))
    monkeypatch.setattr(batch, "WORK_CALLS", 1)
    first, second, third = (ROOT / f"data/demo_transcripts/{c}.json" for c in CALLS[:3])
    nights = {}
    for workers in (1, 2):
        tx = tmp_path / f"tx{workers}"
        tx.mkdir()
        config = tmp_path / f"{workers}.yaml"
        config.write_text(yaml.safe_dump({"input": str(tmp_path / "none"), "transcripts": str(tx),
                                          "out": str(tmp_path / f"out{workers}"), "signals": str(ROOT / "signals"),
                                          "import_commit_every": 2, "runner": {"workers": workers}}))
        shutil.copy2(first, tx)
        shutil.copy2(second, tx)
        flows.run_nightly(config=str(config), progress=False)
        os.utime(tx / first.name, (0, 0))              # re-exported: read again, and known by its call_id
        shutil.copy2(third, tx / "copy.json")           # a new call
        again = json.loads(third.read_text())          # the same call again, in a later batch, said otherwise
        again["utterances"][0]["text"] = "Words only the refused duplicate has."
        (tx / "z-again.json").write_text(json.dumps(again))
        (tx / "broken.json").write_text("{")
        parsed.clear()
        nights[workers] = flows.run_nightly(config=str(config), progress=False)
        # the re-exported stored file is read here, to skip it unprepared; the new ones where they are prepared
        assert parsed == [first.name] + ([] if workers == 2 else ["broken.json", "copy.json", "z-again.json"])
    summary = nights[2]
    assert {k: summary["counts"][k] for k in ("found", "skipped", "imported", "failed")} == {
        "found": 5, "skipped": 2, "imported": 1, "failed": 2}
    assert [f["error"] for f in summary["failures"]] == [
        "broken.json: not valid JSON (line 1 column 2: Expecting property name enclosed in double quotes)",
        f"z-again.json: duplicate call_id '{CALLS[2]}' (also in copy.json)"]
    assert summary["counts"] == nights[1]["counts"] and summary["failures"] == [
        {**f, "run_id": summary["run_id"]} for f in nights[1]["failures"]]
    # the refused duplicate's page, rendered by its worker, is never written over the stored call's
    for workers in (1, 2):
        page = next((tmp_path / f"out{workers}/scorecards").rglob(f"{CALLS[2]}.html")).read_text(encoding="utf-8")
        assert "Words only the refused duplicate has." not in page
        assert json.loads(third.read_text())["utterances"][0]["text"].split(",")[0] in page
        assert not (tmp_path / f"out{workers}/scorecards/.incoming").exists()  # nor left staged
    with Store(tmp_path / "out2").connect_read_only() as con:
        assert con.execute("SELECT call_id, source_path FROM calls ORDER BY call_id").fetchall() == [
            (CALLS[0], first.name), (CALLS[1], second.name), (CALLS[2], "copy.json")]


def pool_script(tmp_path: Path, first: str = "", then: str = "") -> Path:
    """A night in a process of its own: a pool of 2 workers prepares 2 demo transcripts and prints how many
    calls it got; `first` runs before (imports), `then` inside the pool's `with`, after the print."""
    script = tmp_path / "night.py"
    script.write_text(f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
{first}
from pipeline import batch, transcripts
from pipeline.config import Config

if __name__ == "__main__":
    cfg = Config()
    work = [[(p, p.name)] for p in sorted((batch.Path({str(ROOT)!r}) / "data/demo_transcripts").glob("c-*.json"))[:2]]
    with batch.Pool(2, cfg.signals, list(cfg.redaction.entities), None, cfg.topics, "r", transcripts.Reading()) as pool:
        print(sum(len(b.calls) for b in pool.map((w, None, set()) for w in work)), flush=True)
        {then}
""")
    return script


def test_pool_workers_exit_without_a_word_on_stderr(tmp_path):
    """A worker re-runs the parent's main module, so it imports what the CLI imports (DuckDB among them); a night
    on 2 workers must not end with DuckDB's leak report in the operator's log."""
    script = pool_script(tmp_path, first="import duckdb  # as `callintel` (pipeline.cli) imports it, and so each worker")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "2\n", "")


def _alive(pid: int) -> bool:
    try:  # a zombie (dead, not yet reaped by whoever adopted it) holds nothing any more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_pool_workers_leave_when_the_run_is_killed(tmp_path):
    """kill -9 of a run (an operator, the OOM killer) cannot shut its pool down: each worker used to live on
    with its models loaded, adopted by init, for good."""
    script = pool_script(tmp_path, then="time.sleep(600)  # killed here, its workers idle with their models")
    run = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert run.stdout.readline() == "2\n"
        workers = [int(p) for p in Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()]
        assert len(workers) >= 2 and all(_alive(w) for w in workers)
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [w for w in workers if _alive(w)] == []


def test_pages_rendered_in_the_workers_are_the_pages_of_the_stored_rows(tmp_path, prefect_harness, monkeypatch):
    """Imported calls' scorecards are rendered where their batch is prepared (here: in the 2 workers, none in this
    process) and are exactly the pages the stored rows give."""
    from pipeline import scorecard

    rendered_here, page_of, render = [], scorecard.page, scorecard.render
    monkeypatch.setattr(scorecard, "page", lambda b, *a: rendered_here.append(b["call"]["call_id"]) or page_of(b, *a))
    given, write_pages = [], Store.write_pages

    def spy(self, pages):
        pages = list(pages)
        given.extend(pages)
        return write_pages(self, pages)

    monkeypatch.setattr(Store, "write_pages", spy)
    nights = two_nights(tmp_path, "two", workers=2)
    assert [night["failures"] for night in nights] == [[], []]
    assert rendered_here == []
    # each worker wrote its pages too: this process only put the files they staged in place
    assert sorted(call["call_id"] for call, _ in given) == CALLS
    assert all(isinstance(page, Path) and page.parent.name == ".incoming" for _, page in given)
    store = Store(tmp_path / "two")
    calls = {c["call_id"]: c["call_date"] for c in store.read("calls", ["call_id", "call_date"]).to_pylist()}
    stored = list(scorecard.bundles(store.read_calls(scorecard.PAGE_TABLES, calls)))
    assert sorted(b["call"]["call_id"] for b in stored) == CALLS
    for bundle in stored:
        page = store.page_path(bundle["call"])
        assert page.read_text(encoding="utf-8") == render(bundle, tmp_path / "none", page), bundle["call"]["call_id"]


@pytest.mark.parametrize("change", ["rubric", "signals"])
def test_after_a_rules_change_the_workers_do_the_archive_again_as_one_process_would(tmp_path, prefect_harness,
                                                                                   monkeypatch, change):
    """A new rubric version (re-score), or a new signal (re-tag, then re-score): on 2 workers the stored calls are
    done again there (a group of days each, committed here in order), and every table is the one doing them in
    this process gives."""
    import os

    from pipeline import archive
    from test_flow_qa import add_a_signal, new_rubric_version, run, setup

    monkeypatch.setattr(archive, "SPREAD_FROM", 1)  # 3 calls: spread them anyway
    here = []
    for name in ("rescore_rows", "tag_rows"):
        monkeypatch.setattr(archive, name, functools.partial(lambda f, *a, **kw: here.append(f) or f(*a, **kw),
                                                             getattr(archive, name)))
    nights = {}
    for workers in (1, 2):
        (tmp_path / f"w{workers}").mkdir()
        tx, signals, out = setup(tmp_path / f"w{workers}")
        for file in tx.iterdir():  # the same files, to the second they were written
            os.utime(file, ns=(0, (ROOT / "data/demo_transcripts" / file.name).stat().st_mtime_ns))
        run(tx, signals, out, workers=workers)
        new_rubric_version(signals) if change == "rubric" else add_a_signal(signals)
        here.clear()
        bars = []
        monkeypatch.setattr(archive, "bar", lambda *args: bars.append((args, progress.bar(*args))) or bars[-1][1])
        nights[workers] = run(tx, signals, out, workers=workers, progress=True)
        assert len(here) == (0 if workers == 2 else 1 if change == "rubric" else 2)
        # what the operator watches: every stored call done again
        assert [(bar.desc, bar.n, bar.total, args[3]) for args, bar in bars] == [
            (f"{doing} stored calls", 3, 3, True)
            for doing in (["re-tagging"] if change == "signals" else []) + ["re-scoring"]]
    counts = nights[2]["counts"]
    assert counts == nights[1]["counts"] and nights[2]["failures"] == []
    assert (counts["rescored"], counts["retagged"]) == (3, 0 if change == "rubric" else 3)
    for table in TABLES:
        assert rows(tmp_path / "w2/out", table) == rows(tmp_path / "w1/out", table), table
    with Store(tmp_path / "w2/out").connect_read_only() as con:
        versions = con.execute("SELECT rubric_version, count(*) FROM scorecards GROUP BY 1 ORDER BY 1").fetchall()
        said = con.execute("SELECT DISTINCT call_id, utt_idx FROM signal_hits WHERE signal_id = 'account_said'").fetchall()
    if change == "rubric":
        assert versions == [(1, 3), (2, 3)]  # version 1's scorecards stay, beside version 2's
    else:  # the new signal's hits: every turn of the scripts that says "account"
        scripts = {f.stem: json.loads(f.read_text())["utterances"] for f in (tmp_path / "w2/tx").iterdir()}
        expected = [(call_id, i) for call_id, turns in sorted(scripts.items()) for i, turn in enumerate(turns)
                    if re.search(r"\baccount\b", turn["text"], re.IGNORECASE)]
        assert versions == [(1, 3)] and expected and sorted(said) == expected


def test_rows_scored_by_a_worker_with_other_rules_than_the_flows_are_refused(tmp_path, prefect_harness):
    """signals/ edited after the flow loaded it but before a worker did: the worker's scores are not committed."""
    from pipeline import archive
    from pipeline.rubric import load_qa
    from pipeline.signals import load_signals
    from test_flow_qa import new_rubric_version, run, setup

    tx, signals, out = setup(tmp_path)
    run(tx, signals, out)
    flows_rules = load_qa(signals, load_signals(signals))
    new_rubric_version(signals)  # the edit, between the flow's load and the workers'
    store = Store(out)
    days = set(store.read("calls", ["call_date"]).column("call_date").to_pylist())
    stored = (archive._stored_rows(store, {day}) for day in sorted(days))
    done = archive.Spread(signals, workers=2).run(archive.rescore_anywhere, stored, "r-test", flows_rules.hash)
    with pytest.raises(RuntimeError, match="signals/ changed during the run"):
        next(done)
    # the same rows, scored with the rules the flow has, are taken
    stored = (archive._stored_rows(store, {day}) for day in sorted(days))
    done = archive.Spread(signals, workers=2).run(archive.rescore_anywhere, stored, "r-test",
                                                  load_qa(signals, load_signals(signals)).hash)
    calls = len(store.read("calls"))
    # every call's version 1 scorecard kept, and its version 2 one new
    assert sum(len(tables["scorecards"]) for tables, _ in done) == 2 * calls and calls == 3
