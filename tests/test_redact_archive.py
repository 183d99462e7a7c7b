"""A release that redacts more also cleans what an earlier one stored (pipeline/redact_archive.py).

The earlier release is simulated on a real store: after a real night, c-0001's card turn is put back as the
demo transcript says it (as rules that missed the card would have stored it), and so is one topic example.
The truth is the transcript: the card's words must be gone from every table, view and page, and the rest of
the turn kept word for word.
"""
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import ROOT, demo_transcripts_folder
from pipeline.schemas import conform
from pipeline.store import Store

CALLINTEL = str(Path(sys.executable).with_name("callintel"))

CALLS = ["c-0001", "c-0002", "c-0003", "c-0005"]
TURN = 8  # c-0001: "Please put it on my new Visa. The number is four two four two, ..."
CARD = "four two four two, four two four two, four two four two, four two four two"


@pytest.fixture
def folder(tmp_path):
    return demo_transcripts_folder(tmp_path, CALLS, "topics: {representation: tfidf, min_topic_size: 2}\n")


def said() -> str:
    return json.loads((ROOT / "data/demo_transcripts/c-0001.json").read_text())["utterances"][TURN]["text"]


def as_an_older_release_stored_it(store: Store) -> None:
    """c-0001's card turn and a topic example with the card's words in them, and another release's rules."""
    utterances = store.read("utterances").to_pylist()
    for u in utterances:
        if (u["call_id"], u["utt_idx"]) == ("c-0001", TURN):
            u["text"] = said()
    topics = store.read("topics").to_pylist()
    topics[0]["examples"] = [said()] + list(topics[0]["examples"] or [])
    with store.lock():
        store.commit("older", 1, {"utterances": conform("utterances", utterances),
                                  "topics": conform("topics", topics)},
                     remove={"utterances": store.manifest()["utterances"], "topics": store.manifest()["topics"]},
                     meta={"redaction_hash": "older release"})


def check(folder) -> str:
    done = subprocess.run([CALLINTEL, "check", "--config", str(folder / "callintel.yaml")], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def stored_anywhere(out, words: str) -> list[str]:
    """Every table and view value, and every page, holding these words."""
    found = []
    with duckdb.connect(str(out / "callintel.duckdb"), read_only=True) as con:
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            columns = [c[0] for c in con.execute(f'DESCRIBE "{name}"').fetchall()]
            hits = con.execute(f'SELECT count(*) FROM "{name}" WHERE '
                               + " OR ".join(f'CAST("{c}" AS VARCHAR) ILIKE ?' for c in columns),
                               [f"%{words}%"] * len(columns)).fetchone()[0]
            found += [name] * hits
    found += [p.name for p in (out / "scorecards").rglob("*.html") if words in p.read_text()]
    return found


def test_text_an_earlier_release_stored_is_redacted_again(folder, prefect_harness):
    import flows

    first = flows.nightly(config=str(folder / "callintel.yaml"))
    assert first["counts"]["imported"] == len(CALLS)
    store = Store(folder / "out")
    model_before = store.meta()["topic_model"]
    as_an_older_release_stored_it(store)
    assert "the next run redacts them again first" in check(folder)

    second = flows.nightly(config=str(folder / "callintel.yaml"))
    assert "NOTE: the redaction rules changed" not in check(folder)
    turn = [u for u in store.read("utterances").to_pylist() if (u["call_id"], u["utt_idx"]) == ("c-0001", TURN)]
    assert turn[0]["text"] == said().replace(CARD, "[CARD]")
    assert stored_anywhere(folder / "out", "four two four two") == []
    examples = [e for row in store.read("topics").to_pylist() for e in row["examples"] or []]
    assert said().replace(CARD, "[CARD]") in examples
    assert "redaction rules changed: redacted 1 more pieces of personal data in 1 stored calls (c-0001)" in " ".join(
        second["notes"])
    assert f"stored text redacted again: re-tagged {len(CALLS)} stored calls" in second["notes"]
    assert store.meta()["topic_model"] != model_before  # refit: the old model file and its examples are gone
    assert not (folder / "out" / "models" / model_before).exists()
    assert second["counts"]["redacted"] == 1

    third = flows.nightly(config=str(folder / "callintel.yaml"))
    assert not any("redaction rules changed" in note for note in third["notes"]), third["notes"]
    assert third["counts"]["retagged"] == 0


def test_a_store_already_redacted_by_these_rules_is_only_read_once(folder, prefect_harness):
    import flows

    flows.nightly(config=str(folder / "callintel.yaml"))
    store = Store(folder / "out")
    with store.lock():
        store.commit("older", 1, {}, meta={"redaction_hash": "older release"})
    again = flows.nightly(config=str(folder / "callintel.yaml"))
    assert not any("redaction rules changed" in note for note in again["notes"]), again["notes"]
    assert again["counts"]["retagged"] == 0 and store.meta()["redaction_hash"] != "older release"


def test_a_run_killed_after_redacting_some_days_still_redoes_what_derives_from_them(folder, prefect_harness):
    """The killed run committed the days it redacted (their text is clean now) but not the end of the pass:
    the next run finds nothing more in the text, and must still re-tag, re-score and refit from it."""
    import flows

    flows.nightly(config=str(folder / "callintel.yaml"))
    store = Store(folder / "out")
    model_before = store.meta()["topic_model"]
    with store.lock():
        store.commit("killed", 1, {}, meta={"redaction_hash": "older release", "redaction_found": True})
    again = flows.nightly(config=str(folder / "callintel.yaml"))
    assert "redaction rules changed: finishing what an interrupted run began" in " ".join(again["notes"])
    assert again["counts"]["retagged"] == len(CALLS)
    assert store.meta()["topic_model"] != model_before and not store.meta()["redaction_found"]


def test_the_rules_hash_covers_every_redaction_module():
    from pipeline.redact_archive import REDACTION_CODE

    modules = {p.name for p in (ROOT / "pipeline").glob("redact*.py")} - {"redact_archive.py"}
    assert modules | {"spoken.py"} == set(REDACTION_CODE)


def test_the_database_file_keeps_no_bytes_of_text_redacted_again(folder, prefect_harness):
    """DuckDB leaves a deleted row's bytes in freed blocks of its file: a callintel.duckdb updated in place would
    keep the card the stored text no longer holds, for anyone who reads the file (`strings callintel.duckdb`)."""
    import flows
    from pipeline.views import VIEWS

    flows.nightly(config=str(folder / "callintel.yaml"))
    store = Store(folder / "out")
    as_an_older_release_stored_it(store)
    with store.lock():
        store.publish(VIEWS)  # as the older release's night did
    db = folder / "out" / "callintel.duckdb"
    assert "four two four two" in db.read_bytes().decode("latin-1")

    flows.nightly(config=str(folder / "callintel.yaml"))
    assert stored_anywhere(folder / "out", "four two four two") == []
    assert "four two four two" not in db.read_bytes().decode("latin-1")


def test_topic_terms_made_of_text_redacted_again_go_with_it(folder, prefect_harness):
    """A topic's terms and label are words of its turns: an e-mail an older release kept ("anna dot brooks at gmail
    dot com") stays in every model version's terms unless those go with the text."""
    import flows

    flows.nightly(config=str(folder / "callintel.yaml"))
    store = Store(folder / "out")
    lines = json.loads((ROOT / "data/demo_transcripts/c-0002.json").read_text())["utterances"]
    at = next(i for i, u in enumerate(lines) if "gmail" in u["text"])  # the script's e-mail line
    utterances = store.read("utterances").to_pylist()
    for u in utterances:
        if (u["call_id"], u["utt_idx"]) == ("c-0002", at):
            u["text"] = lines[at]["text"]
    topics = store.read("topics").to_pylist()
    kept = list(topics[0]["top_terms"])
    topics[0]["top_terms"], topics[0]["label"] = kept + ["gmail", "anna dot"], "anna dot, gmail"  # the older fit's
    with store.lock():
        store.commit("older", 1, {"utterances": conform("utterances", utterances), "topics": conform("topics", topics)},
                     remove={"utterances": store.manifest()["utterances"], "topics": store.manifest()["topics"]},
                     meta={"redaction_hash": "older release"})

    flows.nightly(config=str(folder / "callintel.yaml"))
    assert stored_anywhere(folder / "out", "gmail") == []
    assert stored_anywhere(folder / "out", "anna dot") == []
    older = [row for row in store.read("topics").to_pylist() if row["model_version"] == topics[0]["model_version"]]
    assert older[0]["top_terms"] == kept
