"""Signals and categories: the YAML under `signals/`, validated into typed objects once.

An error names the file and key path, e.g.
`signals/churn.yaml: signals[3].window.first_s: must be > 0`, and nothing is written.
Rubrics (`rubric:`) and flag rules (`flags:`) live in the same folder and are read by
their own stages; this loader only checks they are there in the right shape.
"""
from __future__ import annotations

import hashlib
import json
import re
import re._constants as C
import re._parser as parser
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.config_yaml import ID, ConfigError, did_you_mean, format_validation_error, read_yaml, yaml_files
from pipeline.metrics import METRICS, meets, off_scale

DOCS = 'README.md, "Signals and categories"'  # the signal and category grammar
PATTERN_KEYS_ON_TEXT = {"LEMMA": "NORM", "ORTH": "LOWER", "TEXT": "LOWER"}

# The speakers a signal may be scoped to. A turn of any other speaker (a mono recording's or a transcript's
# "unknown") may fire every signal: the words are there, who said them is not, and a mono call must not fail
# "the agent greets". A `no_signal` criterion such a turn alone would fail is n.a. instead (pipeline/score.py).
SIDES = ("agent", "customer")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    first_s: float | None = Field(None, gt=0)
    last_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self):
        if (self.first_s is None) == (self.last_s is None):
            raise ValueError("give exactly one of first_s or last_s")
        return self

    def __str__(self) -> str:
        return f"in the first {self.first_s:g} s" if self.first_s is not None else f"in the last {self.last_s:g} s"


class Signal(_Strict):
    id: str = Field(pattern=ID)
    description: str = ""
    category: str | None = Field(None, pattern=ID)
    speaker: Literal["agent", "customer", "any"] = "any"
    phrases: list[str] = []
    patterns: list[list[dict]] = []
    regex: list[str] = []
    window: Window | None = None
    negation: Literal["exclude", "ignore"] = "exclude"
    examples: list[str] = []
    counter_examples: list[str] = []

    @field_validator("phrases")
    @classmethod
    def _phrases(cls, value: list[str]) -> list[str]:
        for i, phrase in enumerate(value):
            if not re.search(r"\w", phrase):
                raise ValueError(f"phrase {i} has no words")
        return value

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: list[str]) -> list[str]:
        for i, expr in enumerate(value):
            try:
                re.compile(expr)
            except re.error as exc:
                raise ValueError(f"regex {i} does not compile ({exc})") from None
            if (char := _never_in_text(expr)) is not None:
                raise ValueError(f"regex {i} {_why_never(expr, char)}")
        return value

    @model_validator(mode="after")
    def _something_to_match(self):
        if not (self.phrases or self.patterns or self.regex):
            raise ValueError("needs at least one of phrases, patterns or regex")
        return self

    def token_patterns(self) -> list[list[dict]]:
        """Patterns as the Matcher sees them: on our lower-cased, lemma-normalised tokens."""
        return [[_on_norms(token) for token in pattern] for pattern in self.patterns]


def _never_in_text(expr: str) -> str | None:
    """A character that expr spells out and normalised text never holds (upper case, punctuation), else None.

    Phrases are normalised like the text, but an expression is taken as written: `Ofgem`, `£\\d+` or a curly
    apostrophe never matches, and without an example nothing would ever say so. Sets (`[A-Za-z]`) and
    negative look-arounds may name such characters harmlessly; any other part that needs one is dead."""
    tree = parser.parse(expr)
    return _needed_char(tree, bool(tree.state.flags & re.IGNORECASE))


def _needed_char(items, ignore_case: bool) -> str | None:
    for op, av in items:
        if op == C.LITERAL:
            char = chr(av).lower() if ignore_case else chr(av)
            if not (char in " '" or (re.fullmatch(r"\w", char) and char == char.lower())):
                return chr(av)
            continue
        if op == C.SUBPATTERN:
            _, add, remove, inner = av
            groups = [(inner, (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE)]
        elif op == C.BRANCH:
            groups = [(branch, ignore_case) for branch in av[1]]
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT, C.ATOMIC_GROUP):
            groups = [(av[-1] if op != C.ATOMIC_GROUP else av, ignore_case)]
        elif op == C.ASSERT:
            groups = [(av[1], ignore_case)]
        else:
            continue
        for inner, case in groups:
            if (char := _needed_char(inner, case)) is not None:
                return char
    return None


def _why_never(expr: str, char: str) -> str:
    if char == "\u2019":
        straight = expr.replace(char, chr(39))
        return f"has a curly quote {char!r}; the text it runs on has straight ones: write {straight!r}"
    if char != char.lower():
        lowered = re.sub(r"(?<!\\)[A-Z]+", lambda m: m.group().lower(), expr)  # \\B, \\D, \\S, \\W stay
        return f"has {char!r}, but the text it runs on is lower case: write {lowered!r}"
    return (f"has {char!r}, but the text it runs on has no punctuation (apostrophes aside: each run of it is "
            "one space): match a space or nothing there")


def _on_norms(token: dict) -> dict:
    out = {}
    for key, value in token.items():
        key = key.upper() if isinstance(key, str) else key
        new_key = PATTERN_KEYS_ON_TEXT.get(key, key)
        out[new_key] = _lower(value) if new_key != key or key in ("LOWER", "NORM") else value
    return out


def _lower(value):
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict):
        return {k: _lower(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower(v) for v in value]
    return value


class MetricTest(_Strict):
    """A call metric in a category's list, beside signal ids: `{metric: duration_s, gt: 300}`."""
    metric: str
    lt: float | None = None
    gt: float | None = None
    between: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_bound(self):
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r} (one of {', '.join(METRICS)})")
        if sum(b is not None for b in (self.lt, self.gt, self.between)) != 1:
            raise ValueError("a metric test needs exactly one of lt, gt, between")
        if problem := off_scale(self):
            raise ValueError(problem)
        return self

    def holds(self, metrics: dict) -> bool:
        """Whether the call's metric meets the bound; one not measurable on the call (a mono call's talk_ratio)
        is not there, as a signal not said."""
        value = metrics.get(self.metric)
        return value is not None and meets(self, value)


class Category(_Strict):
    id: str = Field(pattern=ID)
    description: str = ""
    all: list[str | MetricTest] = []
    any: list[str | MetricTest] = []
    none: list[str | MetricTest] = []

    @field_validator("all", "any", "none", mode="before")
    @classmethod
    def _metric_tests(cls, items):
        """A mapping in the list is a metric test, told as one (not as "must be text" beside its own error)."""
        if not isinstance(items, list):
            return items
        for i, item in enumerate(items):
            if isinstance(item, dict):
                try:
                    items[i] = MetricTest.model_validate(item)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    said = str(error.get("ctx", {}).get("error", "")) or error["msg"]
                    key = ".".join(str(k) for k in error["loc"])
                    raise ValueError(f"[{i}]{'.' + key if key else ''}: {said}") from None
        return items

    @model_validator(mode="after")
    def _has_rule(self):
        if not (self.all or self.any):
            raise ValueError("needs `all` or `any` (a category of only `none` would match almost every call)")
        return self

    @property
    def measures(self) -> bool:
        """Whether it tests a call metric, which the tagger then measures (most categories are signals only)."""
        return any(isinstance(item, MetricTest) for item in self.all + self.any + self.none)

    def applies(self, present: set[str], metrics: dict | None = None) -> bool:
        def has(item) -> bool:
            return item in present if isinstance(item, str) else item.holds(metrics or {})
        return (all(map(has, self.all)) and (not self.any or any(map(has, self.any)))
                and not any(map(has, self.none)))


class _File(_Strict):
    signals: list[Signal] = []
    categories: list[Category] = []
    rubric: dict | None = None
    flags: list[dict] | None = None


@dataclass(frozen=True)
class SignalSet:
    signals: tuple[Signal, ...]
    categories: tuple[Category, ...]
    sources: dict[str, str]          # signal/category id -> "file: signals[i]"
    hash: str

    def signal(self, signal_id: str) -> Signal:
        return next(s for s in self.signals if s.id == signal_id)


def load_signals(folder: str | Path) -> SignalSet:
    """Every `*.yaml` in folder -> one validated SignalSet (an empty folder is valid: nothing is tagged).

    Example:
        >>> lib = load_signals("signals")
        >>> lib.signal("cancel_intent").speaker
        'customer'
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder.absolute()}: signals folder does not exist; give --signals DIR, or run this from "
                          "the folder with your callintel.yaml")
    signals, categories, sources = [], [], {}
    for path in yaml_files(folder):
        doc = _parse(path)
        for kind, items in (("signals", doc.signals), ("categories", doc.categories)):
            for i, item in enumerate(items):
                where = f"{path}: {kind}[{i}]"
                if item.id in sources:
                    raise ConfigError(f"{where}.id: {item.id!r} is already defined at {sources[item.id]}")
                sources[item.id] = where
        signals += doc.signals
        categories += doc.categories
    _check_patterns(signals, sources)
    _check_references(categories, {s.id for s in signals}, sources)
    payload = json.dumps([[s.model_dump(mode="json") for s in signals],
                          [c.model_dump(mode="json") for c in categories]], sort_keys=True)
    return SignalSet(tuple(signals), tuple(categories), sources, hashlib.sha256(payload.encode()).hexdigest()[:16])


def _parse(path: Path) -> _File:
    raw = read_yaml(path)
    if raw is None:
        return _File()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): must be a mapping with signals, categories, rubric or flags")
    try:
        return _File.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc, _File, DOCS)) from None


def _check_patterns(signals: list[Signal], sources: dict[str, str]) -> None:
    from spacy.matcher import Matcher
    from spacy.vocab import Vocab

    # Validation checks a pattern against spaCy's schema, not a language: a bare vocabulary does, and costs
    # nothing to make (an English pipeline's tokenizer takes 0.2 s, paid again by every pool worker).
    matcher = Matcher(Vocab(), validate=True)
    for signal in signals:
        # as written first, so an error speaks of the LEMMA the author wrote, not the NORM it is matched on
        for i, pattern in [*enumerate(signal.patterns), *enumerate(signal.token_patterns())]:
            try:
                matcher.add(f"{signal.id}.{i}", [pattern])
            except Exception as exc:  # spaCy raises MatcherError/ValueError with a multi-line table
                detail = " ".join(str(exc).split())[:300]
                raise ConfigError(f"{sources[signal.id]}.patterns[{i}]: not a valid spaCy token pattern "
                                  f"({detail})") from None


def _check_references(categories: list[Category], known: set[str], sources: dict[str, str]) -> None:
    for category in categories:
        for rule in ("all", "any", "none"):
            for j, name in enumerate(getattr(category, rule)):
                if isinstance(name, str) and name not in known:
                    raise ConfigError(f"{sources[category.id]}.{rule}[{j}]: unknown signal {name!r}"
                                      f"{did_you_mean(name, known)}")
