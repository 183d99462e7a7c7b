"""Topic discovery in the nightly flow on the demo calls: the app crash nobody configured is found, named,
emerging on the day it starts, keeps its id across nights, and can be promoted to a signal."""
import collections
import json
import os
import random
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT
from models.topics import embed
from pipeline.signals import load_signals
from pipeline.store import Store
from pipeline.tag import Tagger
from pipeline.topic_trends import topic_trends

CALLINTEL = str(Path(sys.executable).with_name("callintel"))
SCRIPT = yaml.safe_load((ROOT / "data/demo_script.yaml").read_text())
CRASH = {(c["call_id"], i) for c in SCRIPT["calls"] for i, line in enumerate(c["lines"])
         if line.get("topic") == "app crash after update"}
START = date(2026, 11, 17)  # c-0007, the first call about it


def night(tmp_path: Path, call_ids: list[str], out: Path, refit_days: int = 7) -> dict:
    import flows

    tx = tmp_path / "tx"
    tx.mkdir(exist_ok=True)
    for call_id in call_ids:
        shutil.copy(ROOT / f"data/demo_transcripts/{call_id}.json", tx)
    config = tmp_path / "callintel.yaml"
    config.write_text(yaml.safe_dump({"input": "none", "transcripts": "tx", "out": str(out),
                                      "signals": str(ROOT / "signals"), "topics": {"refit_days": refit_days}}))
    return flows.nightly(config=str(config))


def crash_topic(out: Path) -> tuple[int, set]:
    """The topic the scripted crash lines were assigned to (exactly one), and the lines in it."""
    rows = Store(out).read("utterance_topics").to_pylist()
    ids = {r["topic_id"] for r in rows if (r["call_id"], r["utt_idx"]) in CRASH}
    assert len(ids) == 1 and -1 not in ids, ids
    topic = ids.pop()
    return topic, {(r["call_id"], r["utt_idx"]) for r in rows if r["topic_id"] == topic}


def promote_the_crash_topic(out: Path, signals: Path) -> tuple[int, Path]:
    """`callintel topics promote` of the crash topic into a copy of the shipped signals: (its id, the folder)."""
    topic, _ = crash_topic(out)
    shutil.copytree(ROOT / "signals", signals)
    made = subprocess.run([CALLINTEL, "topics", "promote", str(topic), "--write", str(signals / "candidate.yaml"),
                           "--out", str(out)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    return topic, signals


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory, prefect_harness):
    tmp = tmp_path_factory.mktemp("topics")
    out = tmp / "out"
    summary = night(tmp, [c["call_id"] for c in SCRIPT["calls"]], out)
    assert not summary["failures"]
    return out


def test_the_new_problem_is_one_topic_emerging_the_day_it_starts(demo_out):
    topic, members = crash_topic(demo_out)
    assert members <= CRASH and len(members) >= 5            # the crash lines, and nothing else
    with Store(demo_out).connect_read_only() as con:
        label, first_seen, examples = con.execute(
            "SELECT label, first_seen, examples FROM topics WHERE topic_id = $t", {"t": topic}).fetchone()
        emerging = con.execute("SELECT day FROM topic_trends WHERE emerging AND topic_id = $t", {"t": topic}).fetchall()
        view = con.execute("SELECT topic_id, day, utterances, calls, share, baseline_share, z, emerging "
                           "FROM topic_trends ORDER BY 1, 2").fetchall()
    assert "app" in label and "crash" in label and first_seen == START and len(examples) == 3
    assert emerging == [(START,)]
    # the DuckDB view and the numpy definition agree
    rows = Store(demo_out).read("utterance_topics", ["topic_id", "call_id", "call_date"])
    ref = topic_trends(rows, {topic: first_seen})
    expected = [tuple(r) for r in ref.itertuples(index=False)]
    assert [r[:4] + (r[7],) for r in view] == [r[:4] + (bool(r[7]),) for r in expected]
    assert [r[4:7] for r in view] == [pytest.approx(tuple(None if x != x else x for x in r[4:7])) for r in expected]


def test_trends_command_plot_notebook_and_promote(demo_out, tmp_path):
    shown = subprocess.run([CALLINTEL, "trends", "--topics", "--plot", str(tmp_path / "t.png"), "--out", str(demo_out)],
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert f"{START}  app, " in shown.stdout and "crash" in shown.stdout
    # every day with calls is a column, also one whose calls had no untagged turn (it read as a day without calls)
    header = shown.stdout.split("Calls per day (topics):\n")[1].splitlines()[0]
    demo_days = sorted({c["started_at"][5:10] for c in SCRIPT["calls"]})
    assert [word for word in header.split() if word[:2].isdigit()] == demo_days and len(demo_days) == 8, header
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "t.png").stat().st_size > 20_000

    topic, signals = promote_the_crash_topic(demo_out, tmp_path / "signals")
    library = load_signals(signals)
    (candidate,) = [s for s in library.signals if s.id not in {t.id for t in load_signals(ROOT / "signals").signals}]
    assert candidate.speaker == "customer" and candidate.examples and Tagger(library).check_examples() == []
    # It says what the topic is about: of the script's customer lines it fires on crash lines only, and on
    # at least half of them (the rest paraphrase: "it freezes", "it closes as soon as I open it").
    tagger = Tagger(library)
    fires = {(c["call_id"], i) for c in SCRIPT["calls"] for i, line in enumerate(c["lines"])
             if line["speaker"] == "customer"
             and any(h.signal_id == candidate.id for h in tagger.match(line["text"], "customer")[0])}
    assert fires <= CRASH and len(fires) >= len(CRASH) / 2, (fires, CRASH)

    import nbformat
    from nbclient import NotebookClient

    book = nbformat.read(ROOT / "notebooks/trends.ipynb", as_version=4)
    os.environ["CALLINTEL_DB"] = str(demo_out / "callintel.duckdb")
    try:
        NotebookClient(book, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        del os.environ["CALLINTEL_DB"]
    text = json.dumps([o for c in book.cells if c.cell_type == "code" for o in c.outputs])
    assert "app, update, crash" in text or ("app" in text and "crash" in text)
    assert "image/png" in text and "Traceback" not in text


def test_a_candidate_that_cannot_be_written_is_one_line_and_examples_can_be_listed_whole(demo_out, tmp_path):
    topic, _ = crash_topic(demo_out)
    target = tmp_path / "no-such-folder" / "candidate.yaml"
    made = subprocess.run([CALLINTEL, "topics", "promote", str(topic), "--write", str(target), "--out", str(demo_out)],
                          capture_output=True, text=True)
    assert made.returncode == 2 and made.stdout == ""
    assert made.stderr == (f"Error: --write {target}: cannot write it (No such file or directory); give a file in a "
                           "folder that exists and this user can write (nothing was written)\n")
    listed = subprocess.run([CALLINTEL, "topics", "list", "--format", "json", "--out", str(demo_out)],
                            capture_output=True, text=True)
    with Store(demo_out).connect_read_only() as con:
        example = con.execute("SELECT examples[1] FROM current_topics WHERE topic_id = $t", {"t": topic}).fetchone()[0]
    assert listed.returncode == 0 and next(t for t in json.loads(listed.stdout) if t["topic_id"] == topic)["example"] == example


def test_a_topic_the_next_fit_drops_is_no_longer_listed_or_promoted(tmp_path, prefect_harness):
    """The README's promote workflow: the crash topic becomes a signal, its turns are tagged, the refit finds no
    such topic. `topics list`, `show` and `promote` are about the model fitted last, not every topic ever."""
    out = tmp_path / "out"
    night(tmp_path, [c["call_id"] for c in SCRIPT["calls"]], out)
    topic, signals = promote_the_crash_topic(out, tmp_path / "signals")
    config = yaml.safe_load((tmp_path / "callintel.yaml").read_text())
    (tmp_path / "callintel.yaml").write_text(yaml.safe_dump({**config, "signals": str(signals)}))
    import flows

    refit = flows.nightly(config=str(tmp_path / "callintel.yaml"))
    assert any(n.startswith("topic model refit (signals changed") for n in refit["notes"])
    listed = subprocess.run([CALLINTEL, "topics", "list", "--out", str(out)], capture_output=True, text=True)
    assert listed.returncode == 0 and "crash" not in listed.stdout, listed.stdout
    again = subprocess.run([CALLINTEL, "topics", "promote", str(topic), "--out", str(out)], capture_output=True,
                           text=True)
    assert again.returncode == 2, again.stdout
    with Store(out).connect_read_only() as con:  # the trend line keeps its label from the model it came from
        (label,) = con.execute("SELECT DISTINCT label FROM topics WHERE topic_id = $t", {"t": topic}).fetchone()
        current = con.execute("SELECT count(*) FROM current_topics WHERE topic_id = $t", {"t": topic}).fetchone()
    assert "crash" in label and current == (0,)


DSTC = ROOT.parent / "shared/data/dstc11-intent-dev/utterances.jsonl"  # real customer turns with their intent


def dstc_calls(tx: Path, day: date, intents: list[str], rng: random.Random) -> None:
    """A transcript per intent: the agent's greeting, two of the customer's turns of that intent, a goodbye."""
    said = collections.defaultdict(list)
    for line in DSTC.read_text().splitlines():
        row = json.loads(line)
        said[row["intent"]].append(row["utterance"])
    for i, intent in enumerate(intents):
        first, second = rng.sample(said[intent], 2)
        turns = [("agent", "Acme Insurance, Sam speaking."), ("customer", first),
                 ("agent", "Let me look into that for you."), ("customer", second), ("agent", "Goodbye now.")]
        (tx / f"{day}-{i}.json").write_text(json.dumps({
            "call_id": f"{day}-{i}-{intent}", "started_at": f"{day}T{9 + i}:00:00",
            "utterances": [{"speaker": who, "start_s": 4.0 * k, "end_s": 4.0 * k + 3.5, "text": text}
                           for k, (who, text) in enumerate(turns)]}))


def test_a_new_problem_refits_the_model_the_night_it_appears(tmp_path, prefect_harness):
    """Ten days of quotes and claims, then a night when callers report car accidents, which no topic explains:
    the weekly refit is days away, but the model is refit that night, the accidents are a topic of the current
    model and emerging that day. A night of the usual calls after it refits nothing."""
    import flows

    rng, tx, out = random.Random(5), tmp_path / "tx", tmp_path / "out"
    tx.mkdir()
    usual = ["GetQuote"] * 3 + ["FileClaim"] * 3
    for d in range(10):
        dstc_calls(tx, date(2026, 11, 1 + d), usual, rng)
    config = tmp_path / "callintel.yaml"
    config.write_text(yaml.safe_dump({"input": "none", "transcripts": "tx", "out": str(out),
                                      "signals": str(ROOT / "signals")}))
    first = flows.nightly(config=str(config))
    assert any(n.startswith("topic model refit (no topic model yet)") for n in first["notes"])

    accident_day = date(2026, 11, 11)
    dstc_calls(tx, accident_day, usual + ["ReportAutomobileAccident"] * 5, rng)
    second = flows.nightly(config=str(config))
    assert any(n.startswith("topic model refit (turns the topics explain poorly rose") for n in second["notes"]), \
        second["notes"]
    with Store(out).connect_read_only() as con:
        placed = con.execute("SELECT t.topic_id, count(*) FROM utterance_topics t JOIN current_topics USING (topic_id)"
                             " WHERE call_id LIKE '%ReportAutomobileAccident' GROUP BY 1 ORDER BY 2 DESC").fetchall()
        accident = placed[0][0]
        emerging = con.execute("SELECT emerging FROM topic_trends WHERE topic_id = $t AND day = $d",
                               {"t": accident, "d": accident_day}).fetchone()
        others = con.execute("SELECT count(*) FROM utterance_topics WHERE topic_id = $t AND call_id NOT LIKE "
                             "'%ReportAutomobileAccident'", {"t": accident}).fetchone()[0]
    assert placed[0][1] >= 7 and others <= 1 and emerging == (True,), (placed, others, emerging)

    dstc_calls(tx, date(2026, 11, 12), usual, rng)
    third = flows.nightly(config=str(config))
    assert not any(n.startswith("topic model refit") for n in third["notes"]), third["notes"]


def test_topic_ids_hold_across_nights_and_refits(tmp_path, prefect_harness):
    out = tmp_path / "out"
    night(tmp_path, [c["call_id"] for c in SCRIPT["calls"]], out)
    topic, members = crash_topic(out)
    fitted = Store(out).meta()["topic_model"]

    # the next night a new caller says it in words of their own: assigned to the same topic, no refit
    (tmp_path / "tx" / "n-1.json").write_text(json.dumps({
        "call_id": "n-1", "started_at": "2026-11-21T09:00:00", "utterances": [
            {"speaker": "agent", "start_s": 0.5, "end_s": 2.0, "text": "Skyline Mobile, this is Sam."},
            {"speaker": "customer", "start_s": 2.5, "end_s": 7.0,
             "text": "Since the latest update your app just crashes every time I open it on my phone."}]}))
    second = night(tmp_path, [], out)
    assert not any(n.startswith("topic model refit") for n in second["notes"]) and Store(out).meta()["topic_model"] == fitted
    assigned = {(r["call_id"], r["utt_idx"]): r["topic_id"] for r in Store(out).read("utterance_topics").to_pylist()}
    assert assigned[("n-1", 1)] == topic and crash_topic(out)[0] == topic

    third = night(tmp_path, [], out, refit_days=1)                # options changed and due: refit
    assert any(n.startswith("topic model refit") for n in third["notes"]) and Store(out).meta()["topic_model"] != fitted
    with Store(out).connect_read_only() as con:
        versions = con.execute("SELECT count(DISTINCT model_version) FROM topics").fetchone()[0]
        seen = con.execute("SELECT DISTINCT first_seen FROM topics WHERE topic_id = $t", {"t": topic}).fetchall()
    assert crash_topic(out)[0] == topic and versions == 2 and seen == [(START,)]

    parts = Store(out).manifest()["utterance_topics"]
    fourth = night(tmp_path, [], out, refit_days=1)               # nothing new: nothing refit or rewritten
    assert not any(n.startswith("topic model refit") for n in fourth["notes"]) and Store(out).manifest()["utterance_topics"] == parts


def new_call(tmp_path: Path, call_id: str, day: str, said: str) -> None:
    """A transcript of a new call in which the customer says one thing (no signal in it)."""
    (tmp_path / "tx" / f"{call_id}.json").write_text(json.dumps({
        "call_id": call_id, "started_at": f"{day}T09:00:00", "utterances": [
            {"speaker": "agent", "start_s": 0.5, "end_s": 2.0, "text": "Skyline Mobile, this is Sam."},
            {"speaker": "customer", "start_s": 2.5, "end_s": 7.0, "text": said}]}))


def test_a_refit_embeds_no_turn_a_fit_or_a_night_embedded_before_and_fits_as_from_scratch(tmp_path, prefect_harness,
                                                                                          monkeypatch):
    """Each fit keeps its window's vectors beside the model, and each night those of the turns it assigned.
    The next refit embeds none of them (here: the demo's turns, a call of the night before, one of the same
    night) and finds the same topics as a refit that embeds its whole window again."""
    from pipeline import discover, topic_vectors

    out = tmp_path / "out"
    night(tmp_path, [c["call_id"] for c in SCRIPT["calls"]], out)
    fitted = Store(out).meta()["topic_vectors"]
    assert (out / "models" / fitted).exists() and Store(out).meta().get("topic_vectors_assigned") in (None, [])
    assigned: list[list[str]] = []  # texts embedded to assign them to the model
    monkeypatch.setattr(discover, "embed", lambda texts: assigned.append(list(texts)) or embed(texts))
    crash = "Since the latest update your app just crashes every time I open it on my phone."
    new_call(tmp_path, "n-1", "2026-11-21", crash)
    second = night(tmp_path, [], out)  # no refit due: the night keeps the vector of the one turn it assigned
    kept = Store(out).meta()["topic_vectors_assigned"]
    assert not any(n.startswith("topic model refit") for n in second["notes"]) and assigned == [[crash]] and len(kept) == 1
    keys, vectors = topic_vectors.load(Store(out), kept[0]["file"])
    assert keys.tolist() == [topic_vectors._key(crash)] and np.array_equal(vectors, embed([crash]).astype(np.float16))

    black = "My phone screen went completely black this morning and it will not turn on."
    new_call(tmp_path, "n-2", "2026-11-22", black)
    scratch = tmp_path / "scratch"  # the same store and files, without any kept vectors
    shutil.copytree(tmp_path / "tx", scratch / "tx")
    shutil.copytree(out, scratch / "out", ignore=shutil.ignore_patterns("*.npz"))
    refitted: list[list[str]] = []  # texts the refit had to embed
    monkeypatch.setattr(topic_vectors, "embed", lambda texts: refitted.append(list(texts)) or embed(texts))
    assigned.clear()
    third = night(tmp_path, [], out, refit_days=1)  # due: n-2 is assigned, then the model refit
    assert assigned == [[black]] and refitted == [] and any("(0 texts embedded" in n for n in third["notes"])
    meta = Store(out).meta()
    assert meta["topic_vectors_assigned"] == [] and sorted(p.name for p in (out / "models").iterdir()) == sorted(
        [meta["topic_model"], meta["topic_vectors"]])  # the fit's file holds them all now; the rest is gone

    night(scratch, [], scratch / "out", refit_days=1)
    assert len(refitted) == 1 and crash in refitted[0] and black not in refitted[0] and len(refitted[0]) > 2
    for table, key in (("utterance_topics", "call_id, utt_idx"), ("topics", "topic_id")):
        assert same_rows(out, table, key) == same_rows(scratch / "out", table, key), table
    assert crash_topic(out) == crash_topic(scratch / "out")


def same_rows(out: Path, table: str, key: str) -> list[tuple]:
    with Store(out).connect_read_only() as con:
        columns = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall()
                   if c[0] not in ("model_version", "created_run")]
        return con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}").fetchall()


def test_from_the_demo_audio_the_new_problem_emerges_and_verdicts_hold(tmp_path, prefect_harness):
    """`make demo` as shipped: Whisper tiny.en on the 10 recordings (it hears "app" as "map" at times).

    One QA verdict may differ from the script's: tiny.en's int8 maths differ by CPU, and on an AMD EPYC it heard
    c-0005's "Thank you for staying with Skyline Mobile, and have a lovely evening" as "thank you for with
    Skyline Mobile and TEMA Lumbly Link", so no closing was heard (bench/qa_quality.py reports each call)."""
    import flows

    sys.path.insert(0, str(ROOT / "data"))
    import demo_truth

    out = tmp_path / "out"
    summary = flows.nightly(input=str(ROOT / "data/demo"), out=str(out), signals=str(ROOT / "signals"),
                            workers=2, progress=False)
    assert summary["failures"] == [] and summary["counts"]["transcribed"] == 10
    with Store(out).connect_read_only() as con:
        emerging = con.execute("SELECT t.day, l.label FROM topic_trends t JOIN topics l USING (topic_id) "
                               "WHERE t.emerging").fetchall()
        verdicts = dict(con.execute("SELECT call_id, passed FROM current_scorecards").fetchall())
    assert len(emerging) == 1 and emerging[0][0] == START and "crash" in emerging[0][1]
    truth = {c: demo_truth.scorecard(c)["passed"] for c in demo_truth.call_ids()}
    assert set(verdicts) == set(truth)
    assert len([c for c in truth if verdicts[c] != truth[c]]) <= 1, (verdicts, truth)
