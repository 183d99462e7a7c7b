"""Score calls against QA rubrics: a result, points and evidence for every criterion.

Evidence is the utterance that satisfied or broke a criterion (its utt_idx, start time
and redacted text); `detail` says why in words. A criterion whose metric cannot be
measured on the call (talk_ratio of a mono call) is n.a., not a fail.
"""
from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterator
from typing import NamedTuple

from pipeline.metrics import meets
from pipeline.rubric import RUBRIC_KINDS, Condition, Criterion, QaConfig, Rubric
from pipeline.signals import SIDES, SignalSet


class Outcome(NamedTuple):  # a tuple, not a frozen dataclass: made for most tests of most calls, at half the cost
    ok: bool | None                # None: could not be measured on this call
    evidence: dict | None
    detail: str


def clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 0:
        seconds = 0
    return f"{seconds // 60}:{seconds % 60:02d}"


_WHEN = operator.itemgetter("start_s", "utt_idx")  # the order of a call's hits
QUOTE_CHARS = 160  # a longer turn is quoted around the words that decided: a page shows a quote's first lines


def excerpt(text: str, said: str, around: int = 60) -> str:
    """The words said in text with about `around` characters either side, cut at spaces and marked "…": the
    disclosure at the end of a 45 s turn was quoted as the turn's start, and the text scorecard printed it all."""
    at = text.lower().find(said.lower())
    if at < 0:
        return text
    start = text.rfind(" ", 0, max(0, at - around)) + 1 if at > around else 0
    end = text.find(" ", at + len(said) + around)
    end = len(text) if end < 0 else end
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


class CallFacts:
    """What is known about one call, and how each kind of condition tests it."""

    def __init__(self, call: dict, hits: list[dict], categories: set[str], metrics: dict, texts: dict[int, str],
                 library: SignalSet):
        self.call, self.categories, self.metrics, self.texts, self.library = call, categories, metrics, texts, library
        self.hits: dict[str, list[dict]] = defaultdict(list)
        for hit in sorted(hits, key=_WHEN):
            self.hits[hit["signal_id"]].append(hit)

    def test(self, cond: Condition) -> Outcome:
        return _TESTS[cond.kind](self, cond)

    def evidence(self, hit: dict) -> dict:
        text = self.texts.get(hit["utt_idx"], "")
        if len(text) > QUOTE_CHARS and (said := hit.get("matched_text")):
            text = excerpt(text, said)
        return {"utt_idx": hit["utt_idx"], "start_s": hit["start_s"], "text": text}

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
        if not inside:
            return Outcome(False, self.evidence(hits[0]),
                           f"{cond.signal} at {clock(hits[0]['start_s'])}, outside {_window_words(cond)}")
        said = f"{cond.signal} at {clock(inside[0]['start_s'])}"
        if cond.before and (first := self._first_of(cond.before)) and _WHEN(first) < _WHEN(inside[0]):
            # the evidence is the moment it was due by: what was done before it
            return Outcome(False, self.evidence(first), f"{said}, after {first['signal_id']} at "
                                                        f"{clock(first['start_s'])}")
        return Outcome(True, self.evidence(inside[0]), said)

    def _first_of(self, signal_ids: list[str]) -> dict | None:
        """The earliest hit of any of these signals, or None."""
        return min((self.hits[s][0] for s in signal_ids if self.hits.get(s)), key=_WHEN, default=None)

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
        ids = [s for s in category.all + category.any if isinstance(s, str)]  # not its metric tests
        firsts = sorted((self.hits[s][0] for s in ids if self.hits.get(s)),
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
        ok = meets(cond, value)
        if cond.lt is not None:
            rule = f"< {cond.lt:g}"
        elif cond.gt is not None:
            rule = f"> {cond.gt:g}"
        else:
            rule = f"in {cond.between[0]:g}–{cond.between[1]:g}"
        return Outcome(ok, self._moment(cond.metric), f"{cond.metric} {value:g} ({'' if ok else 'not '}{rule})")

    def may_hold(self, cond: Condition) -> bool:
        """False when a signal, category or metric condition certainly does not hold on this call, told without
        making its outcome (for flag rules, which most calls do not meet); True when it may."""
        kind = cond.kind
        if kind == "signal":
            return bool(self.hits.get(cond.signal))
        if kind == "category":
            return cond.category in self.categories
        if kind == "metric":
            value = self.metrics.get(cond.metric)
            return value is not None and meets(cond, value)
        if kind == "all":  # the shipped flags combine a metric with the call's length: told as quickly
            return all(self.may_hold(c) for c in cond.all)
        if kind == "any":
            return any(self.may_hold(c) for c in cond.any)
        return True

    def _moment(self, metric: str) -> dict | None:
        """The turn behind a metric's value (the first interruption, the longest silence), if it has one."""
        for moment in self.metrics.get("moments") or []:
            if moment["metric"] == metric or (metric == "interruptions" and moment["metric"].endswith(metric)):
                return self.evidence(moment)
        return None

    def _all(self, cond: Condition) -> Outcome:
        return self._both(cond, cond.all, need_all=True)

    def _any(self, cond: Condition) -> Outcome:
        return self._both(cond, cond.any, need_all=False)

    def _both(self, cond: Condition, parts: list[Condition], need_all: bool) -> Outcome:
        # An all/any of signals only, on a call with none of them (most na_ifs of most calls), has the same
        # outcome on every such call: combined once, then looked up
        only = _signals_only(cond)
        if only is not None and only.isdisjoint(self.hits):
            outcome = _cached(_ABSENT, cond)
            if outcome is _MISSING:
                outcome = _cache(_ABSENT, cond, _combine(map(self.test, parts), need_all))
            return outcome
        return _combine(map(self.test, parts), need_all)


_TESTS = {kind: getattr(CallFacts, "_" + kind) for kind in RUBRIC_KINDS}  # test() without a getattr per condition

# Outcomes that are the same on every call without the condition's signals, and the signals an all/any tests,
# by id(condition) -> (condition, value); the condition is kept, so its id is not reused while it is a key. By
# id, not by the condition: hashing a pydantic model hashes every field, which cost more than making the value.
_ABSENT: dict[int, tuple[Condition, Outcome]] = {}
_SIGNALS: dict[int, tuple[Condition, frozenset[str] | None]] = {}
_MISSING = object()


def _cached(table: dict, cond: Condition):
    """The value table keeps for cond, or _MISSING."""
    known = table.get(id(cond))
    return known[1] if known is not None and known[0] is cond else _MISSING


def _cache(table: dict, cond: Condition, value):
    if len(table) > 4096:  # conditions of configurations loaded since: let them go
        table.clear()
    table[id(cond)] = (cond, value)
    return value


def _absent(cond: Condition) -> Outcome:
    """The outcome of a signal or no_signal condition on a call without that signal: most tests of most calls, the
    same for each, so made once."""
    outcome = _cached(_ABSENT, cond)
    if outcome is not _MISSING:
        return outcome
    if cond.no_signal is not None:
        return _cache(_ABSENT, cond, Outcome(True, None, f"no {cond.no_signal}"))
    return _cache(_ABSENT, cond, Outcome(False, None,
                                         f"no {cond.signal}{' in ' + _window_words(cond) if cond.within else ''}"))


def _signals_only(cond: Condition) -> frozenset[str] | None:
    """The signals an all/any tests, if it tests nothing else (no metric, no category): None otherwise."""
    ids = _cached(_SIGNALS, cond)
    return _cache(_SIGNALS, cond, _signal_ids(cond)) if ids is _MISSING else ids


def _signal_ids(cond: Condition) -> frozenset[str] | None:
    if cond.kind in ("signal", "no_signal"):
        return frozenset([getattr(cond, cond.kind)])
    if cond.kind not in ("all", "any"):
        return None
    parts = [_signal_ids(c) for c in getattr(cond, cond.kind)]
    return None if any(p is None for p in parts) else frozenset().union(*parts)


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
    call_id, call_date = facts.call["call_id"], facts.call["call_date"]
    rubric_id, version = rubric.id, rubric.version
    items, earned, possible, auto_failed = [], [], [], False
    for criterion in rubric.criteria:  # each row made once, in its final key order (no {**key, **item} copies)
        result, points, max_points, evidence, detail = _item(criterion, facts)
        items.append({"call_id": call_id, "rubric_id": rubric_id, "rubric_version": version, "call_date": call_date,
                      "criterion_id": criterion.id, "question": criterion.question, "result": result,
                      "points": points, "max_points": max_points, "evidence": evidence, "detail": detail})
        earned.append(points)
        possible.append(max_points)
        if criterion.auto_fail and result == "fail":
            auto_failed = True
    max_points, earned = sum(possible), sum(earned)
    pct = 0.0 if auto_failed else (round(100.0 * earned / max_points, 1) if max_points else None)
    card = {"call_id": call_id, "rubric_id": rubric_id, "rubric_version": version, "call_date": call_date,
            "points": 0.0 if auto_failed else earned, "max_points": max_points, "pct": pct,
            "passed": None if pct is None else (not auto_failed and pct >= rubric.pass_pct),
            "auto_failed": auto_failed}
    return card, items


def _item(criterion: Criterion, facts: CallFacts) -> tuple:
    """(result, points, max_points, evidence, detail) of one criterion."""
    if criterion.na_if is not None:
        na = facts.test(criterion.na_if)
        if na.ok:  # no evidence: what made it n.a. (a short call, no hold) is not an utterance that decided it
            return "na", 0.0, 0.0, None, f"n.a.: {na.detail}"
    outcome = facts.test(criterion.pass_if)
    if outcome.ok is None:
        return "na", 0.0, 0.0, None, f"n.a.: {outcome.detail}"
    return ("pass" if outcome.ok else "fail", criterion.points if outcome.ok else 0.0, float(criterion.points),
            outcome.evidence, outcome.detail)


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
    cards, items, rubrics = [], [], {}
    for f in facts:
        if not f.texts:
            continue
        # which rubrics apply depends on a call's queue and direction only (Rubric.applies): found once for each
        scope = (f.call.get("queue"), f.call.get("direction"))
        if scope not in rubrics:
            rubrics[scope] = qa.rubrics_for(f.call)
        for rubric in rubrics[scope]:
            card, rows = score_call(rubric, f)
            cards.append(card)
            items += rows
    return cards, items
