"""Enrich, score and flag a batch of calls; re-score the stored archive when the rules change.

Plain functions over rows; the flow decides when to call them and the store writes what
they return. Re-scoring keeps the scorecards of rubric versions that are no longer
configured (they stay queryable by version) and replaces those of current versions.
"""
from __future__ import annotations

from pydantic import ValidationError

from models.sentiment import sentiment
from pipeline.flags import flag_calls
from pipeline.metrics import call_metrics
from pipeline.rubric import QaConfig, Rubric, walk
from pipeline.score import call_facts, score_calls
from pipeline.signals import SignalSet


def add_sentiment(utterances: list[dict]) -> list[dict]:
    """Each utterance with its VADER score (utterances already scored keep theirs)."""
    todo = [i for i, u in enumerate(utterances) if u.get("sentiment") is None]
    scores = sentiment([utterances[i]["text"] for i in todo])
    out = list(utterances)
    for i, score in zip(todo, scores):
        # the same dict as {**row, "sentiment": score} (keys in the same order), at a third of the cost: dict()
        # copies a dict whole instead of unpacking it key by key
        out[i] = dict(out[i], sentiment=score)
    return out


def assess(qa: QaConfig, library: SignalSet, calls: list[dict], utterances: list[dict], hits: list[dict],
           categories: list[dict], run_id: str, metrics: list[dict] | None = None) -> dict[str, list[dict]]:
    """call_metrics, scorecards, scorecard_items and flags of calls whose utterances carry sentiment.

    metrics may be given (stored ones, when re-scoring); else they are computed from the utterances.
    """
    if metrics is None:
        metrics = call_metrics(calls, utterances)
    facts = call_facts(calls, hits, categories, metrics, utterances, library)
    cards, items = score_calls(qa, facts)
    flags = flag_calls(qa, facts, cards, items, run_id)
    return {"call_metrics": metrics, "scorecards": cards, "scorecard_items": items, "flags": flags}


def rescored(qa: QaConfig, old_cards: list[dict], old_items: list[dict], old_flags: list[dict],
             new: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Whole new scorecards/scorecard_items/flags tables after re-scoring every stored call.

    Rows of rubric versions not configured now are kept; a flag that still holds keeps the run that
    first raised it.
    """
    current = {(r.id, r.version) for r in qa.rubrics}
    keep_cards = [c for c in old_cards if (c["rubric_id"], c["rubric_version"]) not in current]
    keep_items = [i for i in old_items if (i["rubric_id"], i["rubric_version"]) not in current]
    first_raised = {(f["call_id"], f["flag_id"]): f["created_run"] for f in old_flags}
    flags = [{**f, "created_run": first_raised.get((f["call_id"], f["flag_id"]), f["created_run"])}
             for f in new["flags"]]
    return {"scorecards": keep_cards + new["scorecards"], "scorecard_items": keep_items + new["scorecard_items"],
            "flags": flags}


def rubric_rows(qa: QaConfig, stored: list[dict], run_id: str) -> tuple[list[dict], list[str]]:
    """The `rubrics` table under this configuration, from the stored one: (rows, notes on what changed).

    A configured version is current; one no longer configured stays, not current, since its scorecards stay.
    A configured version whose definition differs from the stored one of that number replaces it: its
    scorecards were re-scored in place, so the old results of that version are gone, which a note says.
    """
    rows = {(r["rubric_id"], r["rubric_version"]): {**r, "current": False} for r in stored}
    notes = [f"rubric {rubric.id} v{rubric.version} was changed without a new version: its scorecards were re-scored "
             f"in place and the old results are gone; give a changed rubric a new `version` to keep its old "
             f"scorecards beside the new" for rubric in edited_in_place(qa, stored)]
    for rubric in qa.rubrics:
        was = rows.get((rubric.id, rubric.version))
        same = was is not None and _same(rubric, was)
        rows[(rubric.id, rubric.version)] = {
            "rubric_id": rubric.id, "rubric_version": rubric.version, "current": True, "rubric_hash": rubric.hash,
            "pass_pct": rubric.pass_pct, "applies_to": None if rubric.applies_to is None else rubric.scope,
            "criteria": [{"criterion_id": c.id, "question": c.question, "points": c.points, "auto_fail": c.auto_fail}
                         for c in rubric.criteria],
            "definition": rubric.model_dump_json(), "first_run": was["first_run"] if same else run_id}
    return [rows[k] for k in sorted(rows)], notes


def edited_in_place(qa: QaConfig, stored: list[dict]) -> list:
    """The configured rubrics whose stored version of the same number was defined otherwise (`rubrics` rows)."""
    rows = {(r["rubric_id"], r["rubric_version"]): r for r in stored}
    return [r for r in qa.rubrics if (r.id, r.version) in rows and not _same(r, rows[(r.id, r.version)])]


def _same(rubric: Rubric, row: dict) -> bool:
    """Whether a stored `rubrics` row defines this rubric. Its hash is of the definition as a release wrote it,
    so a release whose grammar gained a key (with a default) would call every stored rubric edited; read
    with today's grammar, the stored definition says whether its author changed anything."""
    if row["rubric_hash"] == rubric.hash:
        return True
    try:
        return Rubric.model_validate_json(row["definition"] or "") == rubric
    except ValidationError:  # a key this release no longer has: that is a change of what the rubric means
        return False


def overlapping_defaults(qa: QaConfig) -> str | None:
    """A note when two rubrics without applies_to both score every call no other rubric claims: meant at times
    (two forms for every call), but more often one was meant for some queues and lost its applies_to."""
    defaults = [r.id for r in qa.rubrics if r.applies_to is None]
    if len(defaults) < 2:
        return None
    return (f"rubrics {', '.join(defaults)} have no applies_to, so each scores every call no other rubric claims; "
            "give applies_to to any meant for some queues or directions only")


def unflagged_criteria(qa: QaConfig) -> list[str]:
    """A flag rule's criterion_failed tests one criterion id; a rubric without a criterion of that id never raises
    it, and the calls that rubric scores lose the flag unnoticed (a queue's rubric naming its disclosure otherwise)."""
    warnings, ids = [], {r.id: {c.id for c in r.criteria} for r in qa.rubrics}
    for rule in qa.flags:
        for cond in walk(rule.when):
            lacking = [r for r in qa.rubrics if cond.criterion_failed is not None
                       and cond.criterion_failed not in ids[r.id]]
            warnings += [f"flag {rule.id} tests criterion_failed: {cond.criterion_failed}, which rubric {r.id} "
                         f"({'the default' if r.scope == 'default' else r.scope}) has no criterion of, so the calls "
                         "it scores never raise that flag; name the criterion alike in every rubric, or add a "
                         "criterion_failed for its own id" for r in lacking]
    return warnings


def unmatched_scopes(qa: QaConfig, store) -> list[str]:
    """A rubric whose applies_to names a queue or direction no stored call has scores nothing, and "0 calls
    scored" is the only sign: a call's queue must match exactly ("complaint" is not "complaints")."""
    scoped = [r for r in qa.rubrics if r.applies_to is not None]
    if not scoped or not store.manifest()["calls"]:
        return []
    calls = store.read("calls", ["queue", "direction"])
    seen = {key: sorted({v for v in calls.column(key).to_pylist() if v}) for key in ("queue", "direction")}
    return [f"rubric {r.id} applies_to {key} {', '.join(missing)}, which no call in {store.out} has (stored: "
            f"{', '.join(seen[key]) or 'none'}); a call's {key} must match exactly"
            for r in scoped for key, values in r.applies_to.model_dump().items()
            if (missing := [v for v in values if v not in seen[key]])]
