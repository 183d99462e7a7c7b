"""Spans of PII in a turn's text, and taking them out of its text and its word timings (for pipeline.redact)."""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

ENTITIES = ("card", "ssn", "bank", "pin", "phone", "email", "dob")
# kinds whose later read-backs ("so that's 20 00 00?") go with them
READ_BACK_KINDS = ("card", "ssn", "bank", "pin", "phone")
PRIORITY = {kind: rank for rank, kind in enumerate(ENTITIES)}  # overlapping spans keep the kind ranked first


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int


def merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and s.start < merged[-1].end:
            last = merged[-1]
            kind = min(last.kind, s.kind, key=PRIORITY.get)
            merged[-1] = Span(kind, last.start, max(last.end, s.end))
        elif s.end > s.start:
            merged.append(s)
    return merged


def apply_spans(text: str, spans: list[Span]) -> str:
    out, pos = [], 0
    for s in spans:
        out += [text[pos:s.start], f"[{s.kind.upper()}]"]
        pos = s.end
    return "".join(out) + text[pos:]


def redact_row(utterance: dict, text: str, spans: list[Span]) -> tuple[dict, list[Span]]:
    row = dict(utterance)
    words = [dict(w) for w in utterance.get("words") or []]
    if spans and words:
        spans, words = _redact_words(words, text, spans)
    if spans:
        row["text"] = apply_spans(text, spans)
    if "words" in utterance:
        row["words"] = words
    return row, spans


def _redact_words(words: list[dict], text: str, spans: list[Span]) -> tuple[list[Span], list[dict]]:
    """Spans widened to whole words, and the words with each span's words merged into one."""
    if " ".join(w["word"] for w in words) != text:
        raise ValueError("utterance words do not spell its text, so they cannot be redacted safely")
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w["word"]) + 1
    bounds = [(bisect_right(starts, s.start) - 1, bisect_left(starts, s.end) - 1) for s in spans]
    wide = merge([Span(s.kind, starts[a], starts[b] + len(words[b]["word"])) for s, (a, b) in zip(spans, bounds)])
    out, done = [], 0
    for s in wide:
        a, b = bisect_right(starts, s.start) - 1, bisect_left(starts, s.end) - 1
        probs = [w.get("probability") for w in words[a:b + 1]]
        out += words[done:a] + [{"word": f"[{s.kind.upper()}]", "start_s": words[a]["start_s"],
                                 "end_s": words[b]["end_s"], "probability": None if None in probs else min(probs)}]
        done = b + 1
    return wide, out + words[done:]
