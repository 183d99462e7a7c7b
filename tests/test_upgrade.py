"""A store written by an earlier release, taken over by this one (pipeline/archive.py, pipeline/store.py).

The earlier release is simulated on a real store, in the ways earlier releases did differ: calls tagged and
scored by other code (here: c-0001's greeting missed, as the code before mono calls were scored on their words
missed every agent signal of a mono call) and metrics without `moments` (added with metric evidence). The truth
is the demo script (data/demo_truth.py): what each criterion must say, and where each call's longest silence is.
"""
import json
import re
import shutil
import sys

import duckdb
import pyarrow.compute as pc
import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, demo_transcripts_folder
from pipeline.cli import cli
from pipeline.schemas import conform
from pipeline.store import Store, StoreError

sys.path.insert(0, str(ROOT / "data"))
import demo_truth  # noqa: E402

CALLS = ["c-0001", "c-0002", "c-0003"]


@pytest.fixture
def folder(tmp_path):
    return demo_transcripts_folder(tmp_path, CALLS, "topics: {representation: tfidf, min_topic_size: 2}\n")


def as_an_older_release_tagged_and_scored_it(store: Store) -> None:
    """c-0001 without its greeting (hit and criterion), every call's metrics without moments, no `rules_code`."""
    hits = store.read("signal_hits")
    hits = hits.filter(pc.invert(pc.and_(pc.equal(hits["call_id"], "c-0001"),
                                         pc.equal(hits["signal_id"], "agent_greeting"))))
    items = store.read("scorecard_items").to_pylist()
    for item in items:
        if (item["call_id"], item["criterion_id"]) == ("c-0001", "greeting"):
            item.update(result="fail", points=0.0, evidence=None)
    metrics = store.read("call_metrics").drop_columns(["moments"])
    with store.lock():
        store.commit("older", 1, {"signal_hits": hits, "scorecard_items": conform("scorecard_items", items),
                                  "call_metrics": metrics},
                     remove={t: store.manifest()[t] for t in ("signal_hits", "scorecard_items", "call_metrics")},
                     meta={"rules_code": None})


def check(folder) -> str:
    done = CliRunner().invoke(cli, ["check", "--config", str(folder / "callintel.yaml")], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.output


def results(store: Store, call_id: str) -> dict[str, str]:
    items = store.read("scorecard_items").to_pylist()
    return {i["criterion_id"]: i["result"] for i in items if i["call_id"] == call_id}


def test_calls_an_earlier_release_tagged_and_scored_are_judged_again_by_this_code(folder, prefect_harness):
    import flows

    flows.nightly(config=str(folder / "callintel.yaml"))
    usual = flows.nightly(config=str(folder / "callintel.yaml"))  # a store this release began: nothing to redo
    assert usual["counts"]["retagged"] == 0 and usual["counts"]["rescored"] == 0, usual["notes"]
    store = Store(folder / "out")
    assert "tagged and scored by another release" not in check(folder)
    as_an_older_release_tagged_and_scored_it(store)
    assert results(store, "c-0001")["greeting"] == "fail"  # what the older release left
    assert "the next run re-tags and re-scores them first" in check(folder)

    upgrade = flows.nightly(config=str(folder / "callintel.yaml"))
    for call_id in CALLS:
        assert results(store, call_id) == demo_truth.criteria(call_id), call_id
    metrics = {m["call_id"]: m for m in store.read("call_metrics").to_pylist()}
    for call_id in CALLS:
        longest = [m for m in metrics[call_id]["moments"] or [] if m["metric"] == "max_silence_s"]
        # the longest silence ends at a turn the script puts after its largest gap (the script may have ties)
        gaps = [line["gap_s"] for line in demo_truth.lines(call_id)]
        assert len(longest) == 1 and gaps[longest[0]["utt_idx"]] == pytest.approx(max(gaps)), call_id
    notes = " ".join(upgrade["notes"])
    assert re.search(r"other code: re-tagged 3 stored calls", notes), notes
    assert upgrade["counts"]["rescored"] == len(CALLS)

    after = flows.nightly(config=str(folder / "callintel.yaml"))
    assert after["counts"]["retagged"] == 0 and after["counts"]["rescored"] == 0, after["notes"]


def test_metrics_computed_again_are_those_a_new_call_gets(folder, tmp_path_factory, prefect_harness):
    """The same transcripts stored by this release in a fresh store are the reference."""
    import flows

    fresh = tmp_path_factory.mktemp("fresh")
    shutil.copy(folder / "callintel.yaml", fresh / "callintel.yaml")
    text = (fresh / "callintel.yaml").read_text().replace(str(folder / "out"), str(fresh / "out"))
    (fresh / "callintel.yaml").write_text(text)
    flows.nightly(config=str(fresh / "callintel.yaml"))
    flows.nightly(config=str(folder / "callintel.yaml"))
    as_an_older_release_tagged_and_scored_it(Store(folder / "out"))
    flows.nightly(config=str(folder / "callintel.yaml"))
    order = ("call_id", "ascending")
    upgraded = Store(folder / "out").read("call_metrics").sort_by([order]).to_pylist()
    assert upgraded == Store(fresh / "out").read("call_metrics").sort_by([order]).to_pylist()


def test_the_rules_code_covers_every_module_that_tags_or_scores():
    """Every module of pipeline/ and models/ that tag.py or qa.py reach (the sentiment model: metrics and flags
    read it), except the YAML readers (config.py, config_yaml.py), whose reading is in the signals and rules
    hashes."""
    from pipeline.archive import MODEL_CODE, RULES_CODE

    reached, todo = set(), ["pipeline/tag.py", "pipeline/qa.py"]
    while todo:
        name = todo.pop()
        reached.add(name)
        source = (ROOT / name).read_text()
        imported = re.findall(r"^from (pipeline|models)\.(\w+) import", source, re.M)
        todo += [f"{package}/{m}.py" for package, m in imported if f"{package}/{m}.py" not in reached]
    assert reached - {"pipeline/config.py", "pipeline/config_yaml.py"} == {
        *(f"pipeline/{name}" for name in RULES_CODE), *(f"models/{name}" for name in MODEL_CODE)}


def as_an_older_release_committed_last(store: Store) -> None:
    """The manifest as a release before the `rubrics` table writes it (format 1, the tables it knows; its next
    writer removes the files no manifest names), keeping this release's meta, as its commits do."""
    manifest = json.loads((store.parquet / "_manifest.json").read_text())
    del manifest["parts"]["rubrics"]
    (store.parquet / "_manifest.json").write_text(json.dumps({**manifest, "version": 1}))


def test_a_night_of_an_older_release_in_between_is_repaired_by_the_next_upgrade(folder, prefect_harness):
    import flows

    flows.nightly(config=str(folder / "callintel.yaml"))
    store = Store(folder / "out")
    as_an_older_release_committed_last(store)
    flows.nightly(config=str(folder / "callintel.yaml"))
    rubric = yaml.safe_load((ROOT / "signals/rubric.yaml").read_text())["rubric"]
    rows = store.read("rubrics").to_pylist()
    assert [(r["rubric_id"], r["rubric_version"], r["current"]) for r in rows] == [
        (rubric["id"], rubric["version"], True)]
    with duckdb.connect(str(folder / "out" / "callintel.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT call_id) FROM current_scorecards").fetchone()[0] == len(CALLS)


def test_a_store_of_a_newer_release_is_not_written(folder, prefect_harness):
    import flows

    flows.nightly(config=str(folder / "callintel.yaml"))
    path = folder / "out" / "parquet" / "_manifest.json"
    before = json.loads(path.read_text())
    path.write_text(json.dumps({**before, "version": before["version"] + 1}))
    with pytest.raises(StoreError, match="newer release of callintel"):
        flows.nightly(config=str(folder / "callintel.yaml"))
    assert json.loads(path.read_text())["parts"] == before["parts"]
