"""Score calls against QA rubrics: a result, points and evidence for every criterion.

Evidence is the utterance that satisfied or broke a criterion (its utt_idx, start time
and redacted text); `detail` says why in words. A criterion whose metric cannot be
measured on the call (talk_ratio of a mono call) is n.a., not a fail.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.rubric import RUBRIC_KINDS, Condition, Criterion, QaConfig, Rubric
from pipeline.signals import SIDES, SignalSet


@dataclass(frozen=True)
class Outcome:
    ok: bool | None                # None: could not be measured on this call
    evidence: dict | None
    detail: str


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class CallFacts:
    """What is known about one call, and how each kind of condition tests it."""

    def __init__(self, call: dict, hits: list[dict], categories: set[str], metrics: dict, texts: dict[int, str],
                 library: SignalSet):
        self.call, self.categories, self.metrics, self.texts, self.library = call, categories, metrics, texts, library
        self.hits: dict[str, list[dict]] = defaultdict(list)
        for hit in sorted(hits, key=lambda h: (h["start_s"], h["utt_idx"])):
            self.hits[hit["signal_id"]].append(hit)

    def test(self, cond: Condition) -> Outcome:
        return _TESTS[cond.kind](self, cond)

    def evidence(self, hit: dict) -> dict:
        return {"utt_idx": hit["utt_idx"], "start_s": hit["start_s"], "text": self.texts.get(hit["utt_idx"], "")}

    def _in_window(self, cond: Condition, hits: list[dict]) -> list[dict]:
        window, duration = cond.within, self.call.get("duration_s") or 0.0
        if window is None:
            return hits
        if window.first_s is not None:
            return [h for h in hits if h["start_s"] <= window.first_s]
        return [h for h in hits if h["start_s"] >= duration - window.last_s]

    def _signal(self, cond: Condition) -> Outcome:
        hits = self.hits.get(cond.signal)
        if not hits:
            return _absent(cond)
        inside = self._in_window(cond, hits)
        if inside:
            return Outcome(True, self.evidence(inside[0]), f"{cond.signal} at {clock(inside[0]['start_s'])}")
        return Outcome(False, self.evidence(hits[0]),
                       f"{cond.signal} at {clock(hits[0]['start_s'])}, outside {_window_words(cond)}")

    def _no_signal(self, cond: Condition) -> Outcome:
        hits = self.hits.get(cond.no_signal)
        if not hits:
            return _absent(cond)
        inside = self._in_window(cond, hits)
        if not inside:
            return Outcome(True, None, f"no {cond.no_signal}")
        known = [h for h in inside if h["speaker"] in SIDES]
        hit = (known or inside)[0]
        said = f"{cond.no_signal} at {clock(hit['start_s'])}: {hit['matched_text']!r}"
        if not known and self._sided(cond.no_signal):
            # a mono call's words are nobody's: "the agent swore" cannot be told from "the customer did"
            return Outcome(None, self.evidence(hit), f"{said}, said by a speaker not known (mono)")
        return Outcome(False, self.evidence(hit), said)

    def _sided(self, signal_id: str) -> bool:
        return self.library.signal(signal_id).speaker in SIDES

    def _category(self, cond: Condition) -> Outcome:
        category = next(c for c in self.library.categories if c.id == cond.category)
        firsts = sorted((self.hits[s][0] for s in category.all + category.any if self.hits.get(s)),
                        key=lambda h: h["start_s"])
        evidence = self.evidence(firsts[0]) if firsts else None
        said = ", ".join(f"{h['signal_id']} at {clock(h['start_s'])}" for h in firsts)
        if cond.category in self.categories:
            return Outcome(True, evidence, said or cond.category)
        return Outcome(False, evidence, f"not {cond.category}")

    def _metric(self, cond: Condition) -> Outcome:
        value = self.metrics.get(cond.metric)
        if value is None:
            return Outcome(None, None, f"{cond.metric} not measurable on this call")
        if cond.lt is not None:
            ok, rule = value < cond.lt, f"< {cond.lt:g}"
        elif cond.gt is not None:
            ok, rule = value > cond.gt, f"> {cond.gt:g}"
        else:
            low, high = cond.between
            ok, rule = low <= value <= high, f"in {low:g}–{high:g}"
        return Outcome(ok, self._moment(cond.metric), f"{cond.metric} {value:g} ({'' if ok else 'not '}{rule})")

    def _moment(self, metric: str) -> dict | None:
        """The turn behind a metric's value (the first interruption, the longest silence), if it has one."""
        for moment in self.metrics.get("moments") or []:
            if moment["metric"] == metric or (metric == "interruptions" and moment["metric"].endswith(metric)):
                return self.evidence(moment)
        return None

    def _all(self, cond: Condition) -> Outcome:
        return _combine(map(self.test, cond.all), need_all=True)

    def _any(self, cond: Condition) -> Outcome:
        return _combine(map(self.test, cond.any), need_all=False)


_TESTS = {kind: getattr(CallFacts, "_" + kind) for kind in RUBRIC_KINDS}  # test() without a getattr per condition


@functools.lru_cache(maxsize=4096)
def _absent(cond: Condition) -> Outcome:
    """The outcome of a signal or no_signal condition on a call without that signal: most tests of most calls, the
    same for each, so made once (a condition is frozen, so it is its own key)."""
    if cond.no_signal is not None:
        return Outcome(True, None, f"no {cond.no_signal}")
    return Outcome(False, None, f"no {cond.signal}{' in ' + _window_words(cond) if cond.within else ''}")


def _combine(tests: Iterator[Outcome], need_all: bool) -> Outcome:
    """The first decisive outcome (the conditions after it are not tested: most na_if `all`s of no_signals end at
    the first signal said), else the first not measurable, else all of them in one."""
    decisive = False if need_all else True
    outcomes = []
    for outcome in tests:
        if outcome.ok is decisive:
            return outcome
        outcomes.append(outcome)
    if any(o.ok is None for o in outcomes):
        return next(o for o in outcomes if o.ok is None)
    evidence = next((o.evidence for o in outcomes if o.evidence), None)
    return Outcome(not decisive, evidence, "; ".join(o.detail for o in outcomes))


def _window_words(cond: Condition) -> str:
    w = cond.within
    return f"the first {w.first_s:g} s" if w.first_s is not None else f"the last {w.last_s:g} s"


def score_call(rubric: Rubric, facts: CallFacts) -> tuple[dict, list[dict]]:
    """(scorecards row, scorecard_items rows) of one call under one rubric."""
    key = {"call_id": facts.call["call_id"], "rubric_id": rubric.id, "rubric_version": rubric.version,
           "call_date": facts.call["call_date"]}
    items = [{**key, "criterion_id": criterion.id, "question": criterion.question, **_item(criterion, facts)}
             for criterion in rubric.criteria]
    max_points = sum(i["max_points"] for i in items)
    earned = sum(i["points"] for i in items)
    auto_failed = any(c.auto_fail and i["result"] == "fail" for c, i in zip(rubric.criteria, items))
    pct = 0.0 if auto_failed else (round(100.0 * earned / max_points, 1) if max_points else None)
    card = {**key, "points": 0.0 if auto_failed else earned, "max_points": max_points, "pct": pct,
            "passed": None if pct is None else (not auto_failed and pct >= rubric.pass_pct),
            "auto_failed": auto_failed}
    return card, items


def _item(criterion: Criterion, facts: CallFacts) -> dict:
    if criterion.na_if is not None:
        na = facts.test(criterion.na_if)
        if na.ok:  # no evidence: what made it n.a. (a short call, no hold) is not an utterance that decided it
            return {"result": "na", "points": 0.0, "max_points": 0.0, "evidence": None,
                    "detail": f"n.a.: {na.detail}"}
    outcome = facts.test(criterion.pass_if)
    if outcome.ok is None:
        return {"result": "na", "points": 0.0, "max_points": 0.0, "evidence": None, "detail": f"n.a.: {outcome.detail}"}
    return {"result": "pass" if outcome.ok else "fail", "points": criterion.points if outcome.ok else 0.0,
            "max_points": float(criterion.points), "evidence": outcome.evidence, "detail": outcome.detail}


def call_facts(calls: list[dict], hits: list[dict], categories: list[dict], metrics: list[dict],
               utterances: list[dict], library: SignalSet) -> list[CallFacts]:
    """Group the tables of a batch of calls into one CallFacts per call."""
    hits_by, cats_by, texts_by = defaultdict(list), defaultdict(set), defaultdict(dict)
    for h in hits:
        hits_by[h["call_id"]].append(h)
    for c in categories:
        cats_by[c["call_id"]].add(c["category_id"])
    for u in utterances:
        texts_by[u["call_id"]][u["utt_idx"]] = u["text"]
    metrics_by = {m["call_id"]: m for m in metrics}
    return [CallFacts(c, hits_by[c["call_id"]], cats_by[c["call_id"]], metrics_by.get(c["call_id"], {}),
                      texts_by[c["call_id"]], library) for c in calls]


def score_calls(qa: QaConfig, facts: list[CallFacts]) -> tuple[list[dict], list[dict]]:
    """Scorecards and items for every call under the rubrics that apply to it; silent calls are not scored."""
    cards, items = [], []
    for f in facts:
        if not f.texts:
            continue
        for rubric in qa.rubrics_for(f.call):
            card, rows = score_call(rubric, f)
            cards.append(card)
            items += rows
    return cards, items
