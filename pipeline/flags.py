"""Flag rules -> `flags`: why a call is worth a coach's time, in one line per reason.

A flag rule's `when` is a rubric condition (signal, no_signal, category, metric, all, any)
or one of the scorecard tests: `score_pct_lt`, `auto_failed`, `criterion_failed`.
Scorecard tests look at the call's current scorecards (one per applicable rubric).
"""
from __future__ import annotations

from collections import defaultdict

from pipeline.rubric import Condition, QaConfig
from pipeline.score import CallFacts, Outcome

SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


class FlagFacts:
    """A call's facts plus its scorecards, for the flag-only condition kinds."""

    def __init__(self, qa: QaConfig, facts: CallFacts, cards: list[dict], items: list[dict]):
        self.qa, self.facts, self.cards, self.items = qa, facts, cards, items

    def test(self, cond: Condition) -> Outcome:
        kind = cond.kind
        if kind == "score_pct_lt":
            low = [c for c in self.cards if c["pct"] is not None and c["pct"] < cond.score_pct_lt]
            return _of(low, lambda c: f"QA score {c['pct']:g}% on {_name(c)}, below {cond.score_pct_lt:g}%")
        if kind == "auto_failed":
            failed = [c for c in self.cards if c["auto_failed"]]
            if not cond.auto_failed:
                return Outcome(not failed, None, "no auto-fail")
            return _of(failed, lambda c: f"auto-fail on {_name(c)}: {self._auto_fail_detail(c)}")
        if kind == "criterion_failed":
            failed = [i for i in self.items if i["criterion_id"] == cond.criterion_failed and i["result"] == "fail"]
            return _of(failed, lambda i: f"failed {i['criterion_id']} ({i['detail']})", evidence=True)
        if kind in ("all", "any"):
            outcomes = [self.test(c) for c in getattr(cond, kind)]
            hit = all(o.ok for o in outcomes) if kind == "all" else any(o.ok for o in outcomes)
            return Outcome(hit, None, "; ".join(o.detail for o in outcomes if o.ok))
        return self.facts.test(cond)

    def _auto_fail_detail(self, card: dict) -> str:
        failed = [i for i in self.items if i["rubric_id"] == card["rubric_id"] and i["result"] == "fail"
                  and self.qa.criterion(i["rubric_id"], i["criterion_id"]).auto_fail]
        return ", ".join(f"{i['criterion_id']} ({i['detail']})" for i in failed)


def _name(card: dict) -> str:
    return f"{card['rubric_id']} v{card['rubric_version']}"


def _of(rows: list[dict], describe, evidence: bool = False) -> Outcome:
    if not rows:
        return Outcome(False, None, "")
    return Outcome(True, rows[0].get("evidence") if evidence else None, "; ".join(describe(r) for r in rows))


def flag_calls(qa: QaConfig, facts: list[CallFacts], cards: list[dict], items: list[dict], run_id: str) -> list[dict]:
    """`flags` rows for the calls, one per rule that holds; the reason says what was found and where."""
    cards_by, items_by = defaultdict(list), defaultdict(list)
    for c in cards:
        cards_by[c["call_id"]].append(c)
    for i in items:
        items_by[i["call_id"]].append(i)
    rows = []
    for f in facts:
        call_id = f.call["call_id"]
        ff = FlagFacts(qa, f, cards_by[call_id], items_by[call_id])
        for rule in qa.flags:
            if not f.may_hold(rule.when):  # most rules on most calls: skipped before their reason is written
                continue
            outcome = ff.test(rule.when)
            if outcome.ok:
                reason = outcome.detail if not rule.description else f"{rule.description}: {outcome.detail}"
                rows.append({"call_id": call_id, "flag_id": rule.id, "severity": rule.severity, "reason": reason,
                             "created_run": run_id, "call_date": f.call["call_date"]})
    return rows
