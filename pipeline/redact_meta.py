"""PII out of what comes with a call besides its turns: metadata (`calls.extra`) and the errors that quote input.

A CRM export or a vendor's transcript carries its own fields: a `notes` column ("paid by card 4111 ..."),
keypad entries (`"dtmf": ["4", "1", "1", ...]`), a vendor's per-word list, a whole transcript as one string
with speaker labels. Each value is searched as text the way pipeline.redact reads a turn, in the shapes a
number hides in: the value as JSON, and its strings alone joined by spaces (so a number split over a list's
elements is one run). A whole transcript in one string ("agent: ... customer: ...") is split at its speaker
labels and redacted as turns, so a card read in pieces over them goes too. A value with PII is stored as its
redacted text; keys are searched too. Errors quote values with their PII taken out (`quoted`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator

from pipeline.redact import ENTITIES, redact_text, redact_utterances

SPEAKER_LABEL = re.compile(r"(?i)(?:^|(?<=[\s.,;!?]))(agent|customer|caller|rep|representative|advisor|client)\s*:\s*")


def redact_extras(calls: list[dict], entities: Collection[str]) -> tuple[list[dict], dict[str, int]]:
    """PII out of the calls' other metadata (`extra`), each value with its key's words as context
    ("card_number"). Returns the calls and spans per call."""
    out, found = [], {}
    for call in calls:
        if call.get("extra"):
            clean, n = {}, 0
            for key, value in json.loads(call["extra"]).items():
                key, in_key = _redacted(str(key), entities, "")
                value, in_value = _redacted_value(value, entities, key.replace("_", " "))
                clean[key if key not in clean else f"{key} ({len(clean)})"] = value
                n += in_key + in_value
            if n:
                call, found[call["call_id"]] = {**call, "extra": json.dumps(clean, sort_keys=True)}, n
        out.append(call)
    return out, found


def quoted(value, entities: Collection[str] = ENTITIES, limit: int = 60) -> str:
    """repr() of a bad input value for an error message, PII taken out and cut to `limit` characters: an error
    is stored (failures, the run summary) and printed, so it must not carry what redaction keeps out."""
    text = redact_text(str(value), entities)[0]
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _redacted_value(value, entities: Collection[str], context: str) -> tuple[object, int]:
    """(the value, or its redacted text when it holds PII; spans found)."""
    if isinstance(value, str):
        if len(SPEAKER_LABEL.findall(value)) >= 2:
            return _redacted_dialogue(value, entities)
        return _redacted(value, entities, context)
    if isinstance(value, (bool, type(None))):
        return value, 0
    for text in (json.dumps(value, default=str), " ".join(_strings(value))):
        redacted, n = _redacted(text, entities, context)
        if n:
            return redacted, n
    return value, 0


def _redacted(text: str, entities: Collection[str], context: str) -> tuple[str, int]:
    redacted, spans = redact_text(text, entities, context=context)
    return (redacted, len(spans)) if spans else (text, 0)


def _redacted_dialogue(text: str, entities: Collection[str]) -> tuple[str, int]:
    """A whole conversation in one string, redacted turn by turn; labels and spacing kept."""
    labels = list(SPEAKER_LABEL.finditer(text))
    pieces = [(None, text[:labels[0].start()])] + [(m, text[m.end():nxt.start() if nxt else len(text)])
                                                    for m, nxt in zip(labels, labels[1:] + [None])]
    rows, counts = redact_utterances([{"speaker": _speaker(m), "text": body} for m, body in pieces], entities)
    if not counts:
        return text, 0
    return "".join((m.group() if m else "") + row["text"] for (m, _), row in zip(pieces, rows)), sum(counts.values())


def _speaker(label: re.Match | None) -> str:
    if label is None:
        return "unknown"
    return "agent" if label.group(1).lower() in ("agent", "rep", "representative", "advisor") else "customer"


def _strings(value) -> Iterator[str]:
    """The strings inside a JSON value, in order (a vendor's per-word list: its words)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
