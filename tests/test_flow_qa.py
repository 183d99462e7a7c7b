"""QA in the nightly flow: scorecards, flags and pages are stored with the calls; a new rubric version
re-scores the archive without transcribing, and the old version's scorecards stay queryable."""
import csv
import io
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from pipeline.store import Store

sys.path.insert(0, str(ROOT / "data"))
import demo_truth  # noqa: E402

CALLINTEL = str(Path(sys.executable).with_name("callintel"))
CALLS = ["c-0001", "c-0004", "c-0009"]


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    tx, signals = tmp_path / "tx", tmp_path / "signals"
    tx.mkdir()
    for call_id in CALLS:
        shutil.copy(ROOT / f"data/demo_transcripts/{call_id}.json", tx)
    shutil.copytree(ROOT / "signals", signals)
    return tx, signals, tmp_path / "out"


def run(tx, signals, out, **options):
    import flows

    return flows.nightly(input=str(tx.parent / "none"), transcripts_dir=str(tx), out=str(out), signals=str(signals),
                         **options)


def add_a_signal(signals: Path) -> None:
    """A new signal, said in most calls: every stored call must be tagged again."""
    (signals / "extra.yaml").write_text("signals:\n  - id: account_said\n    phrases: [account]\n")


def new_rubric_version(signals: Path, dropping: str | None = None) -> None:
    """The default rubric as version 2, without the criterion `dropping` when given."""
    doc = yaml.safe_load((signals / "rubric.yaml").read_text())
    doc["rubric"]["version"] = 2
    doc["rubric"]["criteria"] = [c for c in doc["rubric"]["criteria"] if c["id"] != dropping]
    (signals / "rubric.yaml").write_text(yaml.safe_dump(doc))


def expected_pct(call_id: str, dropped: str) -> float:
    """The script's truth under the default rubric without one criterion."""
    results = {c: r for c, r in demo_truth.criteria(call_id).items() if c != dropped}
    points = {c["id"]: c["points"] for c in demo_truth.RUBRIC["criteria"]}
    if results["no_profanity"] == "fail":
        return 0.0
    earned = sum(points[c] for c, r in results.items() if r == "pass")
    return round(100 * earned / sum(points[c] for c, r in results.items() if r != "na"), 1)


def test_scorecards_flags_and_pages_then_a_new_rubric_version_rescores(tmp_path, prefect_harness):
    tx, signals, out = setup(tmp_path)
    first = run(tx, signals, out)
    assert (first["counts"]["imported"], first["counts"]["scored"], first["failures"]) == (3, 3, [])
    store = Store(out)
    cards = {c["call_id"]: c for c in store.read("scorecards").to_pylist()}
    for call_id in CALLS:
        assert {k: cards[call_id][k] for k in ("pct", "passed", "auto_failed")} == demo_truth.scorecard(call_id)
        page = out / "scorecards" / str(cards[call_id]["call_date"]) / f"{call_id}.html"
        assert page.exists() and call_id in page.read_text()
    flags_v1 = {(f["call_id"], f["flag_id"]): f["created_run"] for f in store.read("flags").to_pylist()}
    assert {f for f in flags_v1 if f[0] == "c-0009"} >= {("c-0009", "auto_fail"), ("c-0009", "low_qa_score")}

    new_rubric_version(signals, dropping="resolution_confirmed")
    pages_before = {p: p.stat().st_mtime_ns for p in (out / "scorecards").rglob("*.html")}
    second = run(tx, signals, out)
    assert (second["counts"]["imported"], second["counts"]["transcribed"], second["counts"]["rescored"]) == (0, 0, 3)
    with store.connect_read_only() as con:
        versions = con.execute("SELECT rubric_version, count(*) FROM scorecards GROUP BY 1 ORDER BY 1").fetchall()
        current = dict(con.execute("SELECT call_id, pct FROM current_scorecards").fetchall())
        old = dict(con.execute("SELECT call_id, pct FROM scorecards WHERE rubric_version = 1").fetchall())
        items = con.execute("SELECT count(*) FROM scorecard_items WHERE rubric_version = 2 "
                            "AND criterion_id = 'resolution_confirmed'").fetchone()[0]
    assert versions == [(1, 3), (2, 3)] and items == 0
    assert current == {c: expected_pct(c, "resolution_confirmed") for c in CALLS}
    assert old == {c: demo_truth.scorecard(c)["pct"] for c in CALLS}
    flags_v2 = {(f["call_id"], f["flag_id"]): f["created_run"] for f in store.read("flags").to_pylist()}
    assert all(flags_v2[k] == flags_v1[k] for k in flags_v2 if k in flags_v1)  # still raised by the first run
    assert all(p.stat().st_mtime_ns > t for p, t in pages_before.items())    # pages show the new version

    parts = store.manifest()
    third = run(tx, signals, out)
    assert third["counts"]["rescored"] == 0 and store.manifest()["scorecards"] == parts["scorecards"]


def test_the_rescore_note_counts_the_calls_the_summary_counts(tmp_path, prefect_harness):
    """A stored call without speech has no scorecard: the note said one more call was re-scored than the
    summary's count (and `runs.rescored`)."""
    tx, signals, out = setup(tmp_path)
    (tx / "silent.json").write_text(json.dumps({"call_id": "silent", "started_at": "2026-11-12T10:00:00",
                                                "utterances": []}))
    first = run(tx, signals, out)
    assert (first["counts"]["imported"], first["counts"]["scored"]) == (4, 3)
    new_rubric_version(signals)
    second = run(tx, signals, out)
    assert second["counts"]["rescored"] == 3
    assert [n for n in second["notes"] if "re-scored" in n] == [
        f"rubrics/flags (now {second['qa_hash']}) or signals changed: re-scored 3 stored calls"]


def test_only_the_configured_rubric_versions_are_current_after_a_rollback_a_rename_or_an_edit(tmp_path,
                                                                                           prefect_harness):
    """current_scorecards follows signals/, not the highest version stored: rolled back to v1 (the v2 cards
    kept, not current), renamed (the old id's cards not current), edited without a new version (a note says
    the old results are gone); the `rubrics` table says which version is which."""
    tx, signals, out = setup(tmp_path)
    original = (signals / "rubric.yaml").read_text()
    truth = {c: demo_truth.scorecard(c)["pct"] for c in CALLS}
    store = Store(out)

    def current():
        with store.connect_read_only() as con:
            cards = sorted(con.execute("SELECT rubric_id, rubric_version, call_id, pct FROM current_scorecards")
                           .fetchall())
            queued = dict(con.execute("SELECT call_id, score_pct FROM coaching_queue").fetchall())
            rubrics = con.execute("SELECT rubric_id, rubric_version, current, first_run FROM rubrics ORDER BY 1, 2")
            return cards, queued, rubrics.fetchall()

    first = run(tx, signals, out)
    new_rubric_version(signals, dropping="resolution_confirmed")
    second = run(tx, signals, out)
    cards, queued, rubrics = current()
    assert cards == [("standard", 2, c, expected_pct(c, "resolution_confirmed")) for c in CALLS]
    assert rubrics == [("standard", 1, False, first["run_id"]), ("standard", 2, True, second["run_id"])]

    def shown(call_id):
        """(the rubric and version a call's page and text scorecard show in full, the page's other versions)"""
        page = next((out / "scorecards").rglob(f"{call_id}.html")).read_text()
        told = subprocess.run([CALLINTEL, "scorecard", call_id, "--out", str(out)], capture_output=True, text=True)
        heads = re.findall(r"QA score <small>(\w+) · version (\d+)</small>", page)
        assert [f"{r} v{v}:" for r, v in heads] == [line.split()[0] + " " + line.split()[1] for line in
                                                     told.stdout.splitlines() if re.match(r"\w+ v\d+: ", line)]
        return heads, re.findall(r"other versions of this rubric:\s*(v\d)", page)

    assert shown("c-0001") == ([("standard", "2")], ["v1"])
    (signals / "rubric.yaml").write_text(original)  # rolled back: v1 again, as first scored
    run(tx, signals, out)
    cards, queued, rubrics = current()
    assert cards == [("standard", 1, c, truth[c]) for c in CALLS]
    assert queued and all(queued[c] == truth[c] for c in queued)  # not the lower of v1 and v2
    assert rubrics == [("standard", 1, True, first["run_id"]), ("standard", 2, False, second["run_id"])]
    assert shown("c-0001") == ([("standard", "1")], ["v2"])  # the page and `callintel scorecard` too

    (signals / "rubric.yaml").write_text(original.replace("id: standard", "id: customer_service"))
    run(tx, signals, out)
    cards, _, rubrics = current()
    assert cards == [("customer_service", 1, c, truth[c]) for c in CALLS]
    assert [r[:3] for r in rubrics] == [("customer_service", 1, True), ("standard", 1, False), ("standard", 2, False)]
    assert shown("c-0001") == ([("customer_service", "1")], [])

    (signals / "rubric.yaml").write_text(original.replace("pass_pct: 80", "pass_pct: 50"))  # an edit, still v1
    config = tmp_path / "callintel.yaml"
    config.write_text(f"input: {tx}\nout: {out}\nsignals: {signals}\ntopics: {{representation: tfidf}}\n")
    checked = subprocess.run([CALLINTEL, "check", "--config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "WARNING: rubric standard v1 differs from the v1 the scorecards in" in checked.stdout  # before the night
    edited = run(tx, signals, out)
    assert any("rubric standard v1 was changed without a new version" in n for n in edited["notes"])
    assert "WARNING" not in subprocess.run([CALLINTEL, "check", "--config", str(config)], capture_output=True,
                                           text=True).stdout
    _, _, rubrics = current()
    assert ("standard", 1, True, edited["run_id"]) in rubrics
    with store.connect_read_only() as con:
        passed = dict(con.execute("SELECT call_id, passed FROM current_scorecards").fetchall())
    assert passed == {c: not demo_truth.scorecard(c)["auto_failed"] and truth[c] >= 50 for c in CALLS}
    assert not any("without a new version" in n for n in run(tx, signals, out)["notes"])  # said once

    # a rubric for a queue no call has scores nothing: `check` says so, with the queues the calls do have
    queues = sorted({json.loads((tx / f"{c}.json").read_text())["queue"] for c in CALLS})
    (signals / "complaints.yaml").write_text(original.replace("id: standard", "id: complaints").replace(
        "  criteria:", "  applies_to: {queue: [complaint, " + queues[0] + "]}\n  criteria:", 1))
    checked = subprocess.run([CALLINTEL, "check", "--config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert [line for line in checked.stdout.splitlines() if line.startswith("WARNING")] == [
        f"WARNING: rubric complaints applies_to queue complaint, which no call in {out} has (stored: "
        f"{', '.join(queues)}); a call's queue must match exactly"]
    # a night with new calls says it in its notes (a served night has no `check` before it), once
    (tx / "extra.json").write_text((tx / f"{CALLS[0]}.json").read_text().replace(CALLS[0], "extra-1"))
    noted = run(tx, signals, out)["notes"]
    warned = [line.removeprefix("WARNING: ") for line in checked.stdout.splitlines() if "applies_to" in line]
    assert [n for n in noted if "applies_to" in n] == warned
    # the stored calls the new rubric claims lost their standard v1 scorecards: said, not silently
    claimed = [c for c in CALLS if json.loads((tx / f"{c}.json").read_text())["queue"] == queues[0]]
    assert [n for n in noted if "no longer scores" in n] == [
        f"rubric standard v1 no longer scores {len(claimed)} stored calls (a rubric for their queue or direction "
        "claims them): their standard v1 scorecards were removed; give a rubric a new version before such a change "
        "to keep its old results"]
    # two rubrics without applies_to both score every call: meant at times, so a note, not a warning
    (signals / "second.yaml").write_text(original.replace("id: standard", "id: second_form"))
    checked = subprocess.run([CALLINTEL, "check", "--config", str(config)], capture_output=True, text=True)
    assert "NOTE: rubrics standard, second_form have no applies_to, so each scores every call" in checked.stdout


def test_without_a_rubric_every_call_has_a_page_that_follows_the_flag_rules(tmp_path, prefect_harness):
    """No rubric at all: a page per call still shows its flags, and a change of the flag rules re-renders it."""
    tx, signals, out = setup(tmp_path)
    (signals / "rubric.yaml").unlink()
    rules = "flags:\n  - {id: churn_not_saved, severity: medium, when: {category: unsaved_churn}}\n"
    (signals / "flags.yaml").write_text(rules)
    first = run(tx, signals, out)
    assert (first["counts"]["imported"], first["counts"]["scored"], first["failures"]) == (3, 0, [])

    def flagged_on_pages():
        pages = {p.stem: p.read_text() for p in (out / "scorecards").rglob("*.html")}
        assert sorted(pages) == CALLS
        return {flag: {c for c, html in pages.items() if f'<span class="flag-id">{flag}</span>' in html}
                for flag in ("churn_not_saved", "refund")}

    said = {c: set().union(*(line["signals"] for line in demo_truth.lines(c))) for c in CALLS}
    churn = {c for c in CALLS if "cancel_intent" in said[c] and "retention_offer" not in said[c]}
    assert churn and flagged_on_pages() == {"churn_not_saved": churn, "refund": set()}
    (signals / "flags.yaml").write_text(rules + "  - {id: refund, severity: low, when: {signal: refund_request}}\n")
    second = run(tx, signals, out)
    refund = {c for c in CALLS if "refund_request" in said[c]}
    assert refund and second["failures"] == []
    assert flagged_on_pages() == {"churn_not_saved": churn, "refund": refund}


@pytest.mark.parametrize("change", ["rubric", "signals"])
def test_a_rule_change_cut_short_between_its_commits_is_finished_by_the_next_run(tmp_path, prefect_harness,
                                                                                monkeypatch, change):
    """The archive is re-tagged and re-scored a few days at a time, a commit each (here a day each). A run that
    dies after the first day's commit leaves the change due, and the next run does it all."""
    from pipeline import archive
    from pipeline.writer import Writer

    tx, signals, out = setup(tmp_path)
    run(tx, signals, out)
    if change == "rubric":
        new_rubric_version(signals, dropping="resolution_confirmed")
    else:
        (signals / "extra.yaml").write_text("signals:\n  - id: says_account\n    regex: ['\\baccount\\b']\n")
    commit, commits = Writer.commit, []

    def dies_at_the_second(self, *args, **kwargs):
        if commits:
            raise RuntimeError("killed")
        commits.append(commit(self, *args, **kwargs))

    monkeypatch.setattr(archive, "ARCHIVE_CALLS", 1)
    monkeypatch.setattr(Writer, "commit", dies_at_the_second)
    with pytest.raises(RuntimeError, match="killed"):
        run(tx, signals, out)
    assert len(commits) == 1
    monkeypatch.setattr(Writer, "commit", commit)

    again = run(tx, signals, out)
    assert (again["counts"]["retagged"], again["counts"]["rescored"]) == ((3 if change == "signals" else 0), 3)
    store = Store(out)
    with store.connect_read_only() as con:
        current = dict(con.execute("SELECT call_id, pct FROM current_scorecards").fetchall())
        versions = con.execute("SELECT rubric_version, count(*) FROM scorecards GROUP BY 1 ORDER BY 1").fetchall()
        said = con.execute("SELECT call_id, utt_idx FROM signal_hits WHERE signal_id = 'says_account' "
                           "ORDER BY 1, 2").fetchall()
    if change == "rubric":
        assert versions == [(1, 3), (2, 3)]
        assert current == {c: expected_pct(c, "resolution_confirmed") for c in CALLS}
    else:
        turns = {c: json.loads((tx / f"{c}.json").read_text())["utterances"] for c in CALLS}
        assert said == [(c, i) for c in CALLS for i, u in enumerate(turns[c])
                        if re.search(r"\baccount\b", u["text"].lower())]
        assert versions == [(1, 3)] and current == {c: demo_truth.scorecard(c)["pct"] for c in CALLS}
    third = run(tx, signals, out)
    assert (third["counts"]["retagged"], third["counts"]["rescored"]) == (0, 0)

    # pages are rendered from the archive a few days at a time too: the same bundles as from one read
    from pipeline import scorecard

    calls = {c["call_id"]: c["call_date"] for c in store.read("calls", ["call_id", "call_date"]).to_pylist()}
    by_day = list(scorecard.stored_bundles(store, calls, per_read=1))
    assert sorted(by_day, key=lambda b: b["call"]["call_id"]) == list(
        scorecard.bundles(store.read_calls(scorecard.PAGE_TABLES, calls))) and len(by_day) == 3


def test_pages_of_a_rescored_archive_are_rendered_on_every_core_as_in_one_process(tmp_path, prefect_harness,
                                                                                   monkeypatch):
    """After a rubric change every stored call's page is rendered again: in a pool of workers, a few days each
    (here a day each, so each of the 2 workers renders some), written by the flow; the same bytes as one process."""
    import flows
    from pipeline import scorecard

    tx, signals, out = setup(tmp_path)
    run(tx, signals, out)
    new_rubric_version(signals)
    monkeypatch.setattr(scorecard, "PAGES_PER_WORKER_GROUP", 1)
    rendered_in_pool, pools = scorecard.rendered_in_pool, []
    monkeypatch.setattr(scorecard, "rendered_in_pool", lambda *args: pools.append(args[0]) or rendered_in_pool(*args))
    second = flows.nightly(input=str(tx.parent / "none"), transcripts_dir=str(tx), out=str(out),
                           signals=str(signals), workers=2)
    assert second["counts"]["rescored"] == 3 and second["failures"] == [] and pools == [2]
    store = Store(out)
    calls = {c["call_id"]: c["call_date"] for c in store.read("calls", ["call_id", "call_date"]).to_pylist()}
    one_process = {call["call_id"]: html for call, html, _ in scorecard.rendered(store, tx.parent / "none", calls)}
    written = {call_id: store.page_path({"call_id": call_id, "call_date": day}).read_bytes()
               for call_id, day in calls.items()}
    assert written == one_process and all(b"version 2" in html for html in written.values())
    assert not (out / "scorecards/.incoming").exists()  # every page the workers staged was put in place


@pytest.mark.parametrize("workers", [1, 2])
def test_a_new_signal_rewrites_only_the_pages_it_changes(tmp_path, prefect_harness, monkeypatch, workers):
    """A signals change re-tags and re-scores every stored call, but only the calls that say the new signal's
    phrase get a different page (its chip): the other pages are not rendered again and are left as they were,
    file and time, in one process and when a pool renders them (here a day a worker)."""
    from pipeline import report, scorecard

    tx, signals, out = setup(tmp_path)
    run(tx, signals, out)
    pages = {p.stem: p for p in (out / "scorecards").rglob("*.html")}
    before = {call_id: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for call_id, p in pages.items()}
    add_a_signal(signals)
    monkeypatch.setattr(scorecard, "PAGES_PER_WORKER_GROUP", 1)
    rendering, renders = report.render_scorecard, []  # seen in this process: with one worker, every render
    monkeypatch.setattr(report, "render_scorecard", lambda *args: renders.append(args[0]["call_id"]) or rendering(*args))
    second = run(tx, signals, out, workers=workers)

    says = {c for c in CALLS if any(re.search(r"\baccounts?\b", line["text"], re.I) for line in demo_truth.lines(c))}
    assert says and says < set(CALLS)  # the scripts: some calls say "account", some do not
    assert second["counts"]["retagged"] == second["counts"]["rescored"] == 3 and second["failures"] == []
    after = {call_id: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for call_id, p in pages.items()}
    assert {call_id for call_id in CALLS if after[call_id] != before[call_id]} == says
    assert all(b'<span class="chip">account_said</span>' in after[call_id][2] for call_id in says)
    assert f"scorecard pages: {len(says)} written, {len(CALLS) - len(says)} already up to date" in second["notes"]
    assert sorted(renders) == ([] if workers == 2 else sorted(says))  # a current page is not even rendered
    assert not (out / "scorecards/.incoming").exists()


def test_scorecard_and_flagged_commands(tmp_path, prefect_harness):
    tx, signals, out = setup(tmp_path)
    run(tx, signals, out)
    shown = subprocess.run([CALLINTEL, "scorecard", "c-0009", "--out", str(out)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "AUTO-FAIL" in shown.stdout and "✗ no_profanity" in shown.stdout and "hell" in shown.stdout
    listed = subprocess.run([CALLINTEL, "flagged", "--severity", "high", "--format", "json", "--out", str(out)],
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    high = {"auto_fail", "low_qa_score", "missing_disclosure", "unverified_account_business"}
    truth = [c for c in CALLS if demo_truth.flags(c) & high]
    assert sorted(r["call_id"] for r in rows) == sorted(truth)
    assert [r["call_id"] for r in rows] == sorted(truth, reverse=True)  # newest day first
    assert next(r for r in rows if r["call_id"] == "c-0009")["auto_failed"] is True
    for r in rows:  # a date as a date, the flags as a list (not a numpy repr), as the script says
        assert r["call_date"] == json.loads((tx / f"{r['call_id']}.json").read_text())["started_at"][:10]
        assert set(r["flags"]) & high == demo_truth.flags(r["call_id"]) & high
    as_csv = subprocess.run([CALLINTEL, "flagged", "--severity", "high", "--format", "csv", "--out", str(out)],
                            capture_output=True, text=True)
    cells = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(c["call_id"], c["call_date"], c["flags"].split("; ")) for c in cells] == [
        (r["call_id"], r["call_date"], r["flags"]) for r in rows]
    for c in cells:  # what a coach plans listening with, from the transcript the call came as
        doc = json.loads((tx / f"{c['call_id']}.json").read_text())
        assert (datetime.fromisoformat(c["started_at"]), c["direction"], int(c["n_flags"])) == (
            datetime.fromisoformat(doc["started_at"]), doc["direction"], len(c["flags"].split("; ")))
        assert abs(float(c["duration_s"]) - doc["utterances"][-1]["end_s"]) < 0.01
    agent = subprocess.run([CALLINTEL, "flagged", "--agent", "nobody", "--out", str(out)], capture_output=True, text=True)
    assert agent.returncode == 0 and "no flagged calls" in agent.stdout
    shouted = subprocess.run([CALLINTEL, "flagged", "--agent", "A_RUIZ", "--format", "csv", "--out", str(out)],
                             capture_output=True, text=True)  # ids in any case
    assert {c["agent_id"] for c in csv.DictReader(io.StringIO(shouted.stdout))} == {"a_ruiz"}
    page = subprocess.run([CALLINTEL, "scorecard", "c-0001", "--html", "--out", str(out)], capture_output=True, text=True)
    assert page.returncode == 0 and Path(page.stdout.strip()).exists()


def test_agent_scores_per_agent_per_week_and_rubric(tmp_path, prefect_harness):
    """A second default rubric scores every call too: each agent's week has a row per rubric, each rubric's mean
    over its own scorecards (a mean over both would mix two rubrics' scales)."""
    from collections import Counter
    from datetime import date, timedelta

    tx, signals, out = setup(tmp_path)
    standard = yaml.safe_load((signals / "rubric.yaml").read_text())["rubric"]
    kept = [c for c in standard["criteria"] if c["id"] in ("greeting", "recording_disclosure")]
    (signals / "courtesy.yaml").write_text(yaml.safe_dump(
        {"rubric": {"id": "courtesy", "version": 1, "pass_pct": 50, "criteria": kept}}))
    run(tx, signals, out)
    calls = {c: json.loads((tx / f"{c}.json").read_text()) for c in CALLS}
    weeks = {}
    for call_id, doc in calls.items():
        day = date.fromisoformat(doc["started_at"][:10])
        weeks.setdefault((doc["agent_id"], day - timedelta(days=day.weekday())), []).append(call_id)
    points = {c["id"]: c["points"] for c in kept}
    worth = {c["id"]: c["points"] for c in standard["criteria"]}

    def courtesy(call_id):  # the script's truth under the two-criterion rubric
        results = demo_truth.criteria(call_id)
        pct = round(100 * sum(points[c] for c in points if results[c] == "pass") / sum(points.values()), 1)
        fails = [c for c in points if results[c] == "fail"]
        return {"pct": pct, "passed": pct >= 50, "auto_failed": False}, fails

    truth = {"standard": lambda c: (demo_truth.scorecard(c), [k for k, r in demo_truth.criteria(c).items()
                                                               if r == "fail"]),
             "courtesy": courtesy}
    with Store(out).connect_read_only() as con:
        rows = con.execute("SELECT agent_id, week, rubric_id, calls, mean_score, pass_rate, auto_fails, most_failed "
                           "FROM agent_scores").fetchall()
    assert sorted((r[0], r[1], r[2]) for r in rows) == sorted((a, w, r) for a, w in weeks for r in truth)
    for agent, week, rubric_id, n, mean, pass_rate, auto_fails, most_failed in rows:
        cards, failed = zip(*(truth[rubric_id](c) for c in weeks[(agent, week)]))
        assert n == len(cards)
        assert abs(mean - sum(c["pct"] for c in cards) / n) <= 0.05 + 1e-9  # rounded to 1 place, as DuckDB rounds
        assert pass_rate == round(sum(c["passed"] for c in cards) / n, 3)
        assert auto_fails == sum(c["auto_failed"] for c in cards)
        fails = Counter(k for f in failed for k in f)
        # as often failed: the criterion worth more points first (a missed disclosure before a missed name)
        assert most_failed == sorted(fails, key=lambda k: (-fails[k], -worth[k], k))[:3]


def test_a_rubric_whose_new_version_no_longer_scores_a_call_is_not_shown_as_its_verdict(tmp_path, prefect_harness):
    """standard v2 claims only the retention queue, and a new default rubric scores the others: their pages and
    text scorecards show the default's card, not standard v1's old one as if it were the call's verdict (it led
    the page, beside the current one, with another result)."""
    tx, signals, out = setup(tmp_path)
    run(tx, signals, out)
    doc = yaml.safe_load((signals / "rubric.yaml").read_text())
    kept = [c for c in doc["rubric"]["criteria"] if c["id"] in ("greeting", "recording_disclosure")]
    doc["rubric"].update(version=2, applies_to={"queue": ["retention"]})
    (signals / "rubric.yaml").write_text(yaml.safe_dump(doc))
    (signals / "courtesy.yaml").write_text(yaml.safe_dump(
        {"rubric": {"id": "courtesy", "version": 1, "pass_pct": 50, "criteria": kept}}))
    run(tx, signals, out)
    queues = {c: json.loads((tx / f"{c}.json").read_text())["queue"] for c in CALLS}
    for call_id in CALLS:
        said = subprocess.run([CALLINTEL, "scorecard", call_id, "--out", str(out)], capture_output=True, text=True)
        page = next((out / "scorecards").rglob(f"{call_id}.html")).read_text()
        if queues[call_id] == "retention":
            assert "standard v2:" in said.stdout and "courtesy" not in said.stdout + page, said.stdout
        else:
            assert "courtesy v1:" in said.stdout, said.stdout
            assert "standard" not in said.stdout and "standard" not in page, said.stdout


@pytest.mark.parametrize("workers", [1, 2])
def test_a_page_that_cannot_be_written_is_reported_and_written_the_next_night(tmp_path, prefect_harness, monkeypatch,
                                                                              workers):
    """One call's page cannot be written (a file stands where its day's folder goes): the call is stored, its page
    is a failure of its own (named by the call's file), the other pages are written, and the next night writes the
    missing one without importing anything. On 2 workers (a call each) the page is staged by a worker first: it is
    not left staged either."""
    from pipeline import batch

    monkeypatch.setattr(batch, "WORK_CALLS", 1)
    tx, signals, out = setup(tmp_path)
    (out / "scorecards").mkdir(parents=True)
    blocker = out / "scorecards" / "2026-11-12"  # c-0004's day
    blocker.write_text("not a folder")
    first = run(tx, signals, out, workers=workers)
    assert not (out / "scorecards/.incoming").exists()
    assert first["counts"]["imported"] == 3
    assert [(f["source_path"], f["stage"]) for f in first["failures"]] == [("c-0004.json", "scorecard-page")]
    assert "2026-11-12" in first["failures"][0]["error"]
    assert {p.stem for p in (out / "scorecards").rglob("*.html")} == {"c-0001", "c-0009"}
    assert Store(out).meta()["pages_pending"] is True

    blocker.unlink()
    second = run(tx, signals, out)
    assert (second["counts"]["imported"], second["failures"]) == (0, [])
    assert {p.stem for p in (out / "scorecards").rglob("*.html")} == set(CALLS)
    assert Store(out).meta()["pages_pending"] is False


def test_a_page_that_cannot_be_rendered_is_reported_and_the_others_are_written(tmp_path, prefect_harness,
                                                                              monkeypatch):
    """A rendering bug on one call (here: injected) costs only that call's page, reported with the error; its data
    is stored, and the run still ends."""
    from pipeline import report

    tx, signals, out = setup(tmp_path)
    render = report.render_scorecard

    def buggy(call, *args, **kwargs):
        if call["call_id"] == "c-0009":
            raise ValueError("a bug in the page")
        return render(call, *args, **kwargs)

    monkeypatch.setattr(report, "render_scorecard", buggy)
    first = run(tx, signals, out)
    assert first["counts"]["imported"] == 3
    assert [(f["source_path"], f["stage"], f["error"]) for f in first["failures"]] == [
        ("c-0009.json", "scorecard-page", "HTML scorecard not written (ValueError: a bug in the page)")]
    assert {p.stem for p in (out / "scorecards").rglob("*.html")} == {"c-0001", "c-0004"}
    assert "c-0009" in Store(out).read("scorecards", ["call_id"]).column("call_id").to_pylist()


def test_a_night_that_fails_after_storing_calls_has_written_their_pages_before_it_lets_go(tmp_path, prefect_harness,
                                                                                         monkeypatch):
    """A batch's pages are written by a thread while the next batch is prepared (pipeline/writer.py). A night
    that fails after storing a batch waits for it: once the night has failed the store is the next night's, so
    nothing of this one may still be writing in it."""
    import threading
    import time

    from pipeline import batch
    from pipeline.writer import Writer

    monkeypatch.setattr(batch, "WORK_CALLS", 1)  # a batch a call: c-0001's pages are written as c-0004's is stored
    tx, signals, out = setup(tmp_path)
    write_pages, store_batch = Store.write_pages, Writer.store_batch

    def slow(store, pages):  # a slow disk: c-0001's page is still being written when the night fails
        time.sleep(1.5)
        return write_pages(store, pages)

    def second_fails(writer, prepared):
        if writer.run.counts["imported"]:
            raise RuntimeError("the disk filled up")
        return store_batch(writer, prepared)

    monkeypatch.setattr(Store, "write_pages", slow)
    monkeypatch.setattr(Writer, "store_batch", second_fails)
    (tmp_path / "callintel.yaml").write_text("import_commit_every: 1\n")
    with pytest.raises(RuntimeError, match="the disk filled up"):
        run(tx, signals, out, config=str(tmp_path / "callintel.yaml"), workers=1)
    assert not [t for t in threading.enumerate() if t.name.startswith("callintel-pages")]
    assert Store(out).read("calls", ["call_id"]).column("call_id").to_pylist() == ["c-0001"]
    assert [p.stem for p in (out / "scorecards").rglob("*.html")] == ["c-0001"]


@pytest.mark.parametrize("left_code, why", [
    (None, "as no night that finished recorded how they were drawn (an older release, or a night that stopped)"),
    ("0123", "as this release draws them")], ids=["no-pages-code", "other-pages-code"])
def test_pages_drawn_by_another_release_are_drawn_again_once(tmp_path, prefect_harness, left_code, why):
    """An upgrade that changes the page (a fix, a new part) reaches the calls stored before it: the first night
    renders every stored page and writes those that come out different; the night after touches none."""
    tx, signals, out = setup(tmp_path)
    run(tx, signals, out)
    pages = {p.stem: p for p in (out / "scorecards").rglob("*.html")}
    drawn = {call_id: page.read_bytes() for call_id, page in pages.items()}
    store = Store(out)
    with store.lock():  # as an older release left it: its own pages, and its page code or none
        store.commit("older-release", 0, {}, meta={"pages_code": left_code})
    older = re.sub(rb'(name="callintel-page" content=")\w+', rb"\g<1>0123", drawn["c-0004"])  # other page code
    pages["c-0004"].write_bytes(older.replace(b"<h1>", b"<h1>older release "))
    config = tmp_path / "callintel.yaml"
    config.write_text(f"input: {tx}\nout: {out}\nsignals: {signals}\ntopics: {{representation: tfidf}}\n")
    checked = subprocess.run([CALLINTEL, "check", "--config", str(config)], capture_output=True, text=True)
    assert f"NOTE: the scorecard pages in {out} were drawn by another release" in checked.stdout, checked.stdout
    upgraded = run(tx, signals, out)
    assert upgraded["counts"]["imported"] == 0
    assert f"scorecard pages drawn again, {why}: 1 changed, 2 the same" in upgraded["notes"]
    assert {call_id: page.read_bytes() for call_id, page in pages.items()} == drawn
    when = {call_id: page.stat().st_mtime_ns for call_id, page in pages.items()}
    after = run(tx, signals, out)
    assert not any("scorecard pages" in note for note in after["notes"])
    assert {call_id: page.stat().st_mtime_ns for call_id, page in pages.items()} == when


def test_a_new_stores_first_night_draws_its_pages_once(tmp_path, prefect_harness):
    """A history import into a new store renders each page with its batch; drawing every page again at the end of
    the same night, as if another release had drawn them, is the whole pages step twice."""
    tx, signals, out = setup(tmp_path)
    first = run(tx, signals, out)
    assert first["counts"]["imported"] == 3 and len(list((out / "scorecards").rglob("*.html"))) == 3
    assert not any("drawn again" in note for note in first["notes"]), first["notes"]
