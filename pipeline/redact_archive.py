"""Stored text redacted again when the redaction rules change: a release that redacts more also cleans the archive.

Text stored by an earlier release was redacted by that release's rules; a card number they missed would
stay in `utterances`, in the evidence and matched text derived from it, on the pages and in topic
examples, for as long as the call is kept. So the store records which rules redacted it
(`redaction_hash`: the redaction code and the configured entities), and a night whose rules differ
first runs them again over the stored utterances and `calls.extra`, a few days at a time like a re-tag
(what the earlier rules took out is a placeholder already, so only what they missed is found). When
anything was found, the archive is re-tagged and re-scored from the new text (so evidence and pages
follow), topic examples are redacted, and the topic model is refit that night so the model file keeps
no old text. The redacted audio copies of the calls that changed are made again from their recordings
with the new spans, or removed where that cannot be done.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection
from datetime import date
from pathlib import Path

import pyarrow as pa

from pipeline import archive
from pipeline.audio_redact import redact_recordings
from pipeline.redact import redact_text, redact_utterances
from pipeline.redact_meta import redact_extras
from pipeline.schemas import conform
from pipeline.store import day_groups
from pipeline.topic_text import lemmatise

# every module whose code decides what is redacted (tests/test_redact_archive.py keeps this list whole)
REDACTION_CODE = ("redact.py", "redact_cues.py", "redact_digits.py", "redact_ids.py", "redact_turns.py",
                  "redact_spans.py", "redact_meta.py", "spoken.py")


def redaction_hash(entities: Collection[str]) -> str:
    """What redacted the stored text: the redaction code and the entities configured."""
    digest = hashlib.sha256(json.dumps(sorted(entities)).encode())
    here = Path(__file__).parent
    for name in REDACTION_CODE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def reredact(writer, entities: Collection[str], progress: bool | None = None) -> bool:
    """Redact the stored text again if other rules redacted it. True when something was found: the archive's
    tags, scores and topics are then due again (the caller re-tags; this commit asks for a topic refit)."""
    store, run = writer.store, writer.run
    now = redaction_hash(entities)
    before = store.meta().get("redaction_hash")
    if before == now:
        return False
    calls_a_day = archive.calls_per_day(store)
    groups = day_groups(calls_a_day, archive.ARCHIVE_CALLS)
    done = (_redacted_again(store, days, entities, run, writer.audio_from) for days in groups)
    found, changed, replaced = Counter(), set(), {}
    for _, days, (tables, spans, texts) in archive.as_done(groups, done, calls_a_day, "redacting stored calls again",
                                                           progress):
        if tables:
            # "found" stays in meta until the end: a run killed after this commit must still redo what derives
            # from the text, though the next run finds nothing more in these days
            writer.commit(tables, remove={name: store.parts_of(name, days) for name in tables},
                          meta={"redaction_found": True})
            changed |= {c for c, n in spans.items() if n}
            found.update(spans)
            replaced |= texts
    meta = {"redaction_hash": now, "redaction_found": False}
    if changed or store.meta().get("redaction_found"):
        topics = _topics_redacted(store, entities, replaced)
        writer.commit({"topics": topics} if topics is not None else {},
                      remove={"topics": store.manifest()["topics"]} if topics is not None else None,
                      meta={**meta, "topic_refit_due": "stored text redacted again"})
        run.counts["redacted"] += sum(found.values())
        run.notes.append(_note(found, changed))
    else:
        writer.commit({}, meta=meta)
        return False
    return True


def _note(found: Counter, changed: set[str]) -> str:
    if not changed:  # an interrupted run redacted them; what derives from their text is still to redo
        return "redaction rules changed: finishing what an interrupted run began; tags, scores, pages and topics redone"
    names = ", ".join(sorted(changed)[:5]) + (", …" if len(changed) > 5 else "")
    return (f"redaction rules changed: redacted {sum(found.values())} more pieces of personal data in {len(changed)} "
            f"stored calls ({names}); their tags, scores, pages and topics are redone")


def _redacted_again(store, days: set[date], entities: Collection[str], run,
                    recordings: Path | None) -> tuple[dict, Counter, dict]:
    """({table: the days' rows redacted again} for the tables that changed, spans found per call, and each
    utterance text that changed: old -> new). The redacted audio copies of calls that changed are made again
    (`recordings`: the folder they are made from, when redaction.audio is on)."""
    utterances = sorted(store.read("utterances", days=days).to_pylist(), key=lambda u: (u["call_id"], u["utt_idx"]))
    by_call: dict[str, list[dict]] = {}
    for u in utterances:
        by_call.setdefault(u["call_id"], []).append(u)
    spans, rows, dropped = Counter(), [], False
    for call_id, turns in by_call.items():
        try:
            clean, kinds = redact_utterances(turns, entities)
        except ValueError as exc:  # words an earlier release stored that do not spell the text: the text wins
            clean, kinds = redact_utterances([{**t, "words": []} for t in turns], entities)
            run.notes.append(f"{call_id}: stored words did not spell the text ({exc}); redacted on the text, words "
                             "dropped")
            dropped = True
        rows += clean
        spans[call_id] += sum(kinds.values())
    tables = {"utterances": conform("utterances", rows)} if sum(spans.values()) or dropped else {}
    texts = {old["text"]: new["text"] for old, new in zip(utterances, rows) if old["text"] != new["text"]}
    calls = store.read("calls", days=days).to_pylist()
    _audio_again(store, recordings, [c for c in calls if spans[c["call_id"]]], rows, run)
    calls, in_extra = redact_extras(calls, entities)
    if in_extra:
        tables["calls"] = conform("calls", calls)
        spans.update(in_extra)
    return tables, spans, texts


def _audio_again(store, recordings: Path | None, calls: list[dict], utterances: list[dict], run) -> None:
    """The redacted audio copies of these calls made again from their recordings and new spans (utterances: the
    days' redacted rows, by call); a copy that cannot be (the recording is gone, or redaction.audio is off now)
    is removed: it holds what the text hides."""
    copied = {c["source_path"]: c for c in calls if store.audio_path(c).exists()}
    if recordings is None:
        failed = [{"source_path": path, "error": "redaction.audio is off"} for path in copied]
    else:
        failed = redact_recordings(store, recordings, list(copied.values()), utterances)
    for failure in failed:
        call = copied[failure["source_path"]]
        store.audio_path(call).unlink(missing_ok=True)
        run.notes.append(f"{call['call_id']}: redacted audio copy removed, not made again ({failure['error']}): it "
                         "held what the text now hides")


def _topics_redacted(store, entities: Collection[str], replaced: dict[str, str]) -> pa.Table | None:
    """The topics table with its examples redacted again (as their utterance was, in its conversation, when the
    pass changed it; else on their own) and the terms made of what the pass took out dropped from every model
    version's top terms and label ("anna dot", "gmail"), or None if none changed."""
    rows = store.read("topics").to_pylist()
    taken = _lemmas_taken(replaced)
    changed = False
    for row in rows:
        examples = [replaced.get(e) or redact_text(e, entities)[0] if e else e for e in row.get("examples") or []]
        terms = [t for t in row.get("top_terms") or [] if taken.isdisjoint(t.split())]
        label = ", ".join(t for t in row["label"].split(", ") if taken.isdisjoint(t.split())) or "(no terms)"
        changed |= (examples, terms, label) != (row.get("examples") or [], row.get("top_terms") or [], row["label"])
        row.update(examples=examples, top_terms=terms, label=label)
    return conform("topics", rows) if changed else None


def _lemmas_taken(replaced: dict[str, str]) -> set[str]:
    """The lemmas (what topic terms are made of) the pass took out of the texts it changed: old -> new."""
    if not replaced:
        return set()
    lemmas = lemmatise(list(replaced) + list(replaced.values()))
    old, new = lemmas[:len(replaced)], lemmas[len(replaced):]
    return {w for before, after in zip(old, new) for w in set(before.split()) - set(after.split())}
