"""QA rubrics (`rubric:`) and flag rules (`flags:`) from the YAML under `signals/`, validated.

A criterion naming a signal, category or metric that does not exist is a config error
naming the file, line and key, e.g. `signals/rubric.yaml:21: rubric.criteria[2].pass_if.signal:
unknown signal 'greting'`, raised before any work starts.

Several files may each hold one `rubric:`. A rubric with `applies_to` scores the calls of
those queues/directions; a rubric without it is the default, used for every call no
other rubric claims. Flag rules from all files are used together.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.config_yaml import ID, ConfigError, did_you_mean, format_validation_error, read_yaml, yaml_files
from pipeline.metrics import METRICS, off_scale
from pipeline.signals import SignalSet, Window

RUBRIC_KINDS = ("signal", "no_signal", "category", "metric", "all", "any")
FLAG_KINDS = RUBRIC_KINDS + ("score_pct_lt", "auto_failed", "criterion_failed")
SEVERITIES = ("high", "medium", "low")
FLAGS_ONLY = {"only_under": "flags"}
QA_DOCS = 'README.md, "QA scorecards, flags and the coaching queue"'  # the rubric and flag grammar


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)




class Condition(_Strict):
    """One test on a call; exactly one kind key. Flag rules may also use the flag-only kinds."""
    signal: str | None = None
    no_signal: str | None = None
    category: str | None = None
    metric: str | None = None
    lt: float | None = None
    gt: float | None = None
    between: tuple[float, float] | None = None
    within: Window | None = None
    # the signal's first hit must come before the first of these (a security check before account business)
    before: list[str] | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    # the scorecard tests of a flag rule: a rubric's unknown-key error does not list them (config_yaml._keys_at)
    score_pct_lt: float | None = Field(None, gt=0, le=100, json_schema_extra=FLAGS_ONLY)
    auto_failed: bool | None = Field(None, json_schema_extra=FLAGS_ONLY)
    criterion_failed: str | None = Field(None, json_schema_extra=FLAGS_ONLY)

    @field_validator("before", mode="before")
    @classmethod
    def _listed(cls, value):
        return [value] if isinstance(value, str) else value  # `before: payment_taken` as a list of one

    @functools.cached_property
    def kind(self) -> str:  # asked for every condition of every call: looked up once
        return next(k for k in FLAG_KINDS if getattr(self, k) is not None)

    @model_validator(mode="after")
    def _shape(self):
        kinds = [k for k in FLAG_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"needs exactly one of {', '.join(FLAG_KINDS)} (got {', '.join(kinds) or 'none'})")
        bounds = [b for b in ("lt", "gt", "between") if getattr(self, b) is not None]
        if self.metric is not None and len(bounds) != 1:
            raise ValueError("a metric condition needs exactly one of lt, gt, between")
        if self.metric is None and bounds:
            raise ValueError(f"{bounds[0]} only goes with metric")
        if self.within is not None and self.kind not in ("signal", "no_signal"):
            raise ValueError("within only goes with signal or no_signal")
        if self.before is not None and (self.kind != "signal" or not self.before):
            raise ValueError("before only goes with signal, and lists the signals it must come first of")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError("between needs [low, high]")
        if self.kind in ("all", "any") and not getattr(self, self.kind):
            raise ValueError(f"{self.kind} needs at least one condition")
        if self.auto_failed is False:  # it flagged every call without an auto-fail, unscored ones too
            raise ValueError("auto_failed: true is its one form (it flags calls whose scorecard an auto-fail "
                             "criterion zeroed)")
        if self.score_pct_lt is not None and self.score_pct_lt < 1:
            low = self.score_pct_lt
            raise ValueError(f"score_pct_lt is a percentage ({low:g} flags only calls scoring under {low:g}%); write "
                             f"{low * 100:g} for {low * 100:g}%")
        if self.metric is not None and (problem := off_scale(self)):
            raise ValueError(problem)
        return self


class AppliesTo(_Strict):
    queue: list[str] = []
    direction: list[str] = []


class Criterion(_Strict):
    id: str = Field(pattern=ID)
    question: str = ""
    points: float = Field(ge=0)
    auto_fail: bool = False
    pass_if: Condition
    na_if: Condition | None = None


class Rubric(_Strict):
    id: str = Field(pattern=ID)
    version: int = Field(ge=1)
    description: str = ""
    pass_pct: float = Field(80, ge=0, le=100)
    applies_to: AppliesTo | None = None
    criteria: list[Criterion] = Field(min_length=1)

    @field_validator("pass_pct")
    @classmethod
    def _percent(cls, value: float) -> float:
        if 0 < value < 1:  # a share, not a percentage: every call with a point would pass
            raise ValueError(f"is a percentage ({value:g} passes a call scoring {value:g}%); write {value * 100:g} "
                             f"for {value * 100:g}%")
        return value

    @property
    def scope(self) -> str:
        """Which calls it scores, in words: "default" (those no other rubric claims), "queue billing; direction
        inbound", or "every call" (an empty applies_to claims them all)."""
        if self.applies_to is None:
            return "default"
        return "; ".join(f"{key} {', '.join(values)}" for key, values in self.applies_to.model_dump().items()
                         if values) or "every call"

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def applies(self, call: dict) -> bool:
        rule = self.applies_to
        return rule is not None and (not rule.queue or call.get("queue") in rule.queue) and (
            not rule.direction or call.get("direction") in rule.direction)


class FlagRule(_Strict):
    id: str = Field(pattern=ID)
    severity: Literal["high", "medium", "low"]
    description: str = ""
    when: Condition

    @field_validator("severity", mode="before")
    @classmethod
    def _any_case(cls, value):  # `High`, as a QA manager writes it, is high: refusing it said nothing useful
        return value.lower() if isinstance(value, str) else value


class _QaFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # signals/categories are the signals loader's
    rubric: Rubric | None = None
    flags: list[FlagRule] = []


@dataclass(frozen=True)
class QaConfig:
    rubrics: tuple[Rubric, ...]
    flags: tuple[FlagRule, ...]
    hash: str                      # changes when any rubric or flag rule changes: re-score the archive

    def rubrics_for(self, call: dict) -> list[Rubric]:
        """The rubrics that score this call: those claiming its queue/direction, else the defaults."""
        specific = [r for r in self.rubrics if r.applies(call)]
        return specific or [r for r in self.rubrics if r.applies_to is None]

    def criterion(self, rubric_id: str, criterion_id: str) -> Criterion:
        rubric = next(r for r in self.rubrics if r.id == rubric_id)
        return next(c for c in rubric.criteria if c.id == criterion_id)


def load_qa(folder: str | Path, library: SignalSet) -> QaConfig:
    """Rubrics and flag rules of every `*.yaml` in folder, checked against the signal library.

    Example:
        >>> from pipeline.signals import load_signals
        >>> qa = load_qa("signals", load_signals("signals"))
        >>> qa.rubrics[0].id
        'standard'
    """
    rubrics, flags, wheres, seen = [], [], [], {}
    for path in yaml_files(Path(folder)):
        raw = read_yaml(path)
        if not isinstance(raw, dict) or not ({"rubric", "flags"} & raw.keys()):
            continue
        if "rubric" in raw and raw["rubric"] is None:  # else "no rubric, no call scored" was only a warning
            raise ConfigError(f"{path}: rubric: is empty; give its id, version and criteria ({QA_DOCS}), or remove "
                              "the key")
        try:
            doc = _QaFile.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(str(path), exc, _QaFile, QA_DOCS)) from None
        if doc.rubric:
            _check_rubric(doc.rubric, library, f"{path}: rubric", seen)
            rubrics.append(doc.rubric)
        for i, rule in enumerate(doc.flags):
            _check_flag(rule, library, rubrics, f"{path}: flags[{i}]", seen)
            flags.append(rule)
            wheres.append(f"{path}: flags[{i}]")
    _check_flag_criteria(zip(flags, wheres), rubrics)
    payload = json.dumps([[r.model_dump(mode="json") for r in rubrics], [f.model_dump(mode="json") for f in flags]],
                         sort_keys=True)
    return QaConfig(tuple(rubrics), tuple(flags), hashlib.sha256(payload.encode()).hexdigest()[:16])


def _check_rubric(rubric: Rubric, library: SignalSet, where: str, seen: dict) -> None:
    if ("rubric", rubric.id) in seen:
        raise ConfigError(f"{where}.id: rubric {rubric.id!r} is already defined in {seen[('rubric', rubric.id)]}")
    seen[("rubric", rubric.id)] = where.split(":")[0]
    ids = [c.id for c in rubric.criteria]
    if (twice := next((k for k, i in enumerate(ids) if i in ids[:k]), None)) is not None:  # named by its own line
        raise ConfigError(f"{where}.criteria[{twice}].id: criterion id {ids[twice]!r} is used twice (first as "
                          f"criteria[{ids.index(ids[twice])}])")
    if not any(criterion.points for criterion in rubric.criteria):  # a score is points earned / points possible
        raise ConfigError(f"{where}.criteria: worth 0 points in all, so no call could be given a score; give the "
                          "criteria their points (only an auto_fail criterion may keep points: 0)")
    for i, criterion in enumerate(rubric.criteria):
        for key in ("pass_if", "na_if"):
            condition = getattr(criterion, key)
            if condition is not None:
                _check(condition, library, f"{where}.criteria[{i}].{key}", RUBRIC_KINDS)


def _check_flag(rule: FlagRule, library: SignalSet, rubrics: list, where: str, seen: dict) -> None:
    if ("flag", rule.id) in seen:
        raise ConfigError(f"{where}.id: flag {rule.id!r} is already defined in {seen[('flag', rule.id)]}")
    seen[("flag", rule.id)] = where.split(":")[0]
    _check(rule.when, library, f"{where}.when", FLAG_KINDS)


def _check(cond: Condition, library: SignalSet, where: str, allowed: tuple[str, ...]) -> None:
    kind = cond.kind
    if kind not in allowed:
        raise ConfigError(f"{where}.{kind}: not allowed here (use one of {', '.join(allowed)})")
    value = getattr(cond, kind)
    signals, categories = {s.id for s in library.signals}, {c.id for c in library.categories}
    if kind in ("signal", "no_signal") and value not in signals:
        raise ConfigError(f"{where}.{kind}: unknown signal {value!r}{did_you_mean(value, signals)}")
    for i, signal_id in enumerate(cond.before or []):
        if signal_id not in signals:
            raise ConfigError(f"{where}.before[{i}]: unknown signal {signal_id!r}{did_you_mean(signal_id, signals)}")
    if kind == "category" and value not in categories:
        raise ConfigError(f"{where}.category: unknown category {value!r}{did_you_mean(value, categories)}")
    if kind == "metric" and value not in METRICS:
        raise ConfigError(f"{where}.metric: unknown metric {value!r} (one of {', '.join(METRICS)})")
    for i, child in enumerate(value if kind in ("all", "any") else []):
        _check(child, library, f"{where}.{kind}[{i}]", allowed)


def _check_flag_criteria(flags, rubrics: list[Rubric]) -> None:
    # After all files are read: a flag rule may name a criterion of a rubric in a later file.
    known = {c.id for r in rubrics for c in r.criteria}
    for rule, where in flags:
        for cond in walk(rule.when):
            if cond.criterion_failed is not None and cond.criterion_failed not in known:
                why = "" if rubrics else (" (no rubric is configured: no file in the folder has a `rubric:`; an "
                                          "emptied rubric.yaml?)")
                raise ConfigError(f"{where}.when: criterion_failed: unknown criterion {cond.criterion_failed!r}{why}")


def walk(cond: Condition):
    """The condition and every condition in its all/any lists, depth first."""
    yield cond
    for child in (cond.all or []) + (cond.any or []):
        yield from walk(child)
