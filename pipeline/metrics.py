"""Call metrics from a call's utterances: talk time, silence, overlap, interruptions, pace, sentiment.

Definitions (they are what `call_metrics` means, and what rubric `metric:` conditions test):
- talk time: the time a speaker's turns cover (their own overlapping turns counted once).
- talk_ratio: the agent's share of all talk time (agent / (agent + customer)): 0 when only the customer spoke (an
  agent silent on a call is what QA must see), null when nobody did or on a mono call.
- silence_s / max_silence_s: time nobody speaks between the first and the last turn; ring-in
  and hang-up silence are recording artefacts, not silence on the call.
- overlap_s: time both sides speak at once.
- interruptions: one side starts talking while the other is mid-sentence and the other keeps
  talking (starts another word INTERRUPT_MIN_S or more later). Shorter overlaps are the ordinary
  tail of a hand-over. `agent_interruptions` counts the agent interrupting the customer;
  `customer_interruptions` the reverse.
- wpm: words spoken per minute of the speaker's talk time.
- turns: speaker changes + 1 (consecutive turns of one speaker split at a pause are one turn).
- sentiment_start / sentiment_end: mean sentiment (models/sentiment.py) of the customer's first / last
  turns that carry any (a third of them, 1 to 3 turns), 0.0 when none does; sentiment_change = end - start
  ("did the call end better than it began"). Turns of no feeling ("No, that's all.", "Bye.") are left
  out, not averaged in: a customer who said "this is ridiculous" and then "Bye." ended the call angry.
  Mono calls have no customer label: all turns are used.
- A mono call (every turn `unknown`): talk times, overlap and interruptions are null, since whose
  turn is whose cannot be told; a rubric criterion on them is then n.a., not a pass or a fail.
- moments: where the events behind a metric happened, so a criterion on it has evidence to play: each
  interruption (metric `agent_interruptions` / `customer_interruptions`, the interrupting turn and the time
  its words cut in) and the longest silence (`max_silence_s`, the turn that ended it).
"""
from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

INTERRUPT_MIN_S = 0.3
SPURT_GAP_S = 0.8       # the pause that ends a turn (asr.pause_s)
SENTIMENT_TURNS = 3

# Numeric per-call values a rubric or flag rule may test (`metric: talk_ratio`).
METRICS = ("duration_s", "agent_talk_s", "customer_talk_s", "talk_ratio", "silence_s", "max_silence_s",
           "overlap_s", "interruptions", "agent_interruptions", "customer_interruptions", "agent_wpm",
           "customer_wpm", "turns", "sentiment_start", "sentiment_end", "sentiment_change")


def call_metrics(calls: list[dict], utterances: list[dict]) -> list[dict]:
    """One `call_metrics` row per call; utterances must be grouped by call and in utt_idx order."""
    by_call = {cid: list(turns) for cid, turns in itertools.groupby(utterances, key=lambda u: u["call_id"])}
    return [{"call_id": c["call_id"], "call_date": c["call_date"], "duration_s": c.get("duration_s"),
             **metrics_of(by_call.get(c["call_id"], []))} for c in calls]


# metrics on a fixed scale: a bound outside it is a bound on another scale (a talk_ratio "between: [30, 70]")
METRIC_SCALES = {"talk_ratio": (0, 1, " (the agent's share: 0.5 is half the talk)"),
                 **{m: (-1, 1, " (VADER's compound score)") for m in ("sentiment_start", "sentiment_end")},
                 "sentiment_change": (-2, 2, " (sentiment_end - sentiment_start)")}


def off_scale(bound) -> str | None:
    """Why a metric bound (a rubric or flag condition, a category's metric test) is on another scale than its
    metric's, or None."""
    if not (scale := METRIC_SCALES.get(bound.metric)):
        return None
    bounds = list(bound.between) if bound.between is not None else [b for b in (bound.lt, bound.gt) if b is not None]
    if out := [b for b in bounds if not scale[0] <= b <= scale[1]]:
        return (f"{bound.metric} runs from {scale[0]:g} to {scale[1]:g}{scale[2]}, so {out[0]:g} is outside it "
                "and the condition could never change")
    return None


def meets(bound, value: float) -> bool:
    """Whether a metric's value meets a bound: a rubric or flag condition, or a category's metric test (each has
    exactly one of lt, gt, between)."""
    if bound.lt is not None:
        return value < bound.lt
    if bound.gt is not None:
        return value > bound.gt
    low, high = bound.between
    return low <= value <= high


def metrics_by_call(utterances: list[dict], durations: dict[str, float]) -> dict[str, dict]:
    """Each call's metrics by call_id, its utterances in any order (the tagger's, when a category tests one)."""
    turns: dict[str, list[dict]] = defaultdict(list)
    for u in utterances:
        turns[u["call_id"]].append(u)
    return {call_id: {"duration_s": durations.get(call_id), **metrics_of(sorted(ts, key=lambda u: u["utt_idx"]))}
            for call_id, ts in turns.items()}


def metrics_of(turns: list[dict]) -> dict:
    sides = {"agent": _Side(), "customer": _Side()}
    changes, speaker = 0, _NOBODY
    for u in turns:  # one pass: each turn's words are counted once, for its spurts and for the pace
        if u["speaker"] != speaker:
            changes, speaker = changes + 1, u["speaker"]
        side = sides.get(speaker)
        if side is not None:
            side.add(u)
    agent, customer = _merge(sides["agent"].intervals), _merge(sides["customer"].intervals)
    speech = _merge([(u["start_s"], u["end_s"]) for u in turns])
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(speech)]
    agent_s, customer_s = _length(agent), _length(customer)
    by_agent, by_customer = _interruptions(_talk_spurts(sides["agent"].spurts), _talk_spurts(sides["customer"].spurts))
    # A mono call's turns are nobody's: who talked, overlapped or cut in cannot be told (null), not zero
    sided = bool(sides["agent"].intervals or sides["customer"].intervals) or not turns
    cut_ins = sorted(({"metric": f"{side}_interruptions", "utt_idx": idx, "start_s": round(at, 3)}
                      for side, found in (("agent", by_agent), ("customer", by_customer)) for at, idx in found),
                     key=lambda m: m["start_s"]) if sided and (by_agent or by_customer) else []
    return {
        "agent_talk_s": round(agent_s, 3) if sided else None,
        "customer_talk_s": round(customer_s, 3) if sided else None,
        "talk_ratio": round(agent_s / (agent_s + customer_s), 4) if sided and agent_s + customer_s else None,
        "silence_s": round(sum(gaps), 3),
        "max_silence_s": round(max(gaps, default=0.0), 3),
        "overlap_s": round(_intersection(agent, customer), 3) if sided else None,
        "interruptions": len(by_agent) + len(by_customer) if sided else None,
        "agent_interruptions": len(by_agent) if sided else None,
        "customer_interruptions": len(by_customer) if sided else None,
        "agent_wpm": _wpm(sides["agent"].words, agent_s),
        "customer_wpm": _wpm(sides["customer"].words, customer_s),
        "turns": changes,  # speaker changes + 1: the number of runs of one speaker
        **_sentiment(turns),
        "moments": cut_ins + _longest_silence(turns, speech, gaps),
    }


def _longest_silence(turns: list[dict], speech: list[tuple[float, float]], gaps: list[float]) -> list[dict]:
    """The turn that ended the longest silence (gaps[k] lies between speech[k] and speech[k + 1])."""
    if not gaps:
        return []
    resumed = speech[gaps.index(max(gaps)) + 1][0]  # the first of equal silences
    turn = next(u for u in turns if u["start_s"] == resumed)
    return [{"metric": "max_silence_s", "utt_idx": turn["utt_idx"], "start_s": turn["start_s"]}]


_NOBODY = object()  # the speaker before the first turn: unlike any


@dataclass(slots=True)
class _Side:
    """What one speaker's turns add up to: their (start, end), words, and each turn's spurts."""
    intervals: list[tuple[float, float]] = field(default_factory=list)
    words: int = 0
    spurts: list[tuple[float, float, float, int]] = field(default_factory=list)

    def add(self, turn: dict) -> None:
        words = _word_count(turn)
        start, end = turn["start_s"], turn["end_s"]
        self.intervals.append((start, end))
        self.words += words
        if turn.get("words") or end < start:
            self.spurts += _turn_spurts(turn, words)
        else:  # most turns (no word times): their one spurt, without a list made for it
            self.spurts.append(_even_spurt(start, end, words, turn["utt_idx"]))


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    # The interval being merged is kept in two locals, not a list indexed per step; `b if b > a else a` is
    # max(a, b) as the builtin picks it (the first of equals), without a call each
    ordered = sorted(intervals)
    if not ordered:
        return []
    merged = []
    at, until = ordered[0]
    for start, end in ordered[1:]:
        if start <= until:
            until = end if end > until else until
        else:
            merged.append((at, until))
            at, until = start, end
    merged.append((at, until))
    return merged


def _length(intervals: list[tuple[float, float]]) -> float:
    return float(sum(b - a for a, b in intervals))


def _intersection(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    total, i, j, n, m = 0.0, 0, 0, len(a), len(b)
    while i < n and j < m:
        (a_start, a_end), (b_start, b_end) = a[i], b[j]
        # max(0.0, min(ends) - max(starts)); adding 0.0 changes nothing, so only overlaps are added
        both = (b_end if b_end < a_end else a_end) - (b_start if b_start > a_start else a_start)
        if both > 0.0:
            total += both
        if a_end < b_end:
            i += 1
        else:
            j += 1
    return total


CutIns = list[tuple[float, int]]  # (when a side cut in, the utt_idx of its turn)


def _interruptions(agent: list[tuple], customer: list[tuple]) -> tuple[CutIns, CutIns]:
    """(agent interrupting the customer, customer interrupting the agent), from word times: each as (when it
    cut in, the interrupting turn's utt_idx).

    Whisper stretches the last word of a segment to the segment's end, so turn end times overlap the
    next speaker's start on most hand-overs. What marks talking over someone is that *they keep starting
    words*: X starts talking while Y is mid-spurt and Y starts a word INTERRUPT_MIN_S or more later.
    """
    spurts = {"agent": agent, "customer": customer}
    counts = {}
    for side, other in (("agent", "customer"), ("customer", "agent")):
        # the other side's spurts are disjoint and in order: only the last one starting before `start`
        # can be the one it cuts into
        theirs = spurts[other]
        starts = [spurt[0] for spurt in theirs]
        counts[side] = []
        for start, _, _, idx in spurts[side]:
            k = bisect.bisect_left(starts, start) - 1
            if k >= 0 and start < theirs[k][1] and theirs[k][2] >= start + INTERRUPT_MIN_S:
                counts[side].append((start, idx))
    return counts["agent"], counts["customer"]


def _spurts(turns: list[dict]) -> list[tuple[float, float, float, int]]:
    """One speaker's talk spurts from their turns."""
    return _talk_spurts([spurt for u in turns for spurt in _turn_spurts(u, _word_count(u))])


def _talk_spurts(turn_spurts: list[tuple]) -> list[tuple[float, float, float, int]]:
    """A speaker's talk spurts, (start, end, start of its last word, utt_idx of the turn it starts in), words
    closer than SPURT_GAP_S joined (of turns whose words start it at the same instant, the first turn).

    Each turn's words are joined first (its spurts), then the turns' spurts across turns: joining is transitive,
    so this is the same as sorting every word of the call, at the cost of a turn's spurts rather than its words.
    """
    return _join(sorted(turn_spurts))


def _word_count(turn: dict) -> int:
    return len((turn.get("text") or "").split())


def _join(spurts) -> list[tuple[float, float, float, int]]:
    # as _merge: the spurt being joined in locals, and max/min as the builtins pick them, without a call each
    out: list[tuple] = []
    at = None
    for start, end, last, idx in spurts:
        if at is not None and start - until <= SPURT_GAP_S:
            until = end if end > until else until
            latest = last if last > latest else latest
            if start == at and idx < first:
                first = idx
        else:
            if at is not None:
                out.append((at, until, latest, first))
            at, until, latest, first = start, end, last, idx
    if at is not None:
        out.append((at, until, latest, first))
    return out


def _turn_spurts(turn: dict, words_in_text: int) -> list[tuple[float, float, float, int]]:
    """A turn's spurts. Imported transcripts have no word times: their words are spread evenly over the
    turn, back to back, so they make one spurt whose last word starts one word's length before its end."""
    words, idx = turn.get("words"), turn["utt_idx"]
    if words:
        return _join(sorted((w["start_s"], w["end_s"], w["start_s"], idx) for w in words))
    start, end = turn["start_s"], turn["end_s"]
    n = max(1, words_in_text)
    if end < start:  # malformed times: word by word, as if spread over them
        step = (end - start) / n
        return _join(sorted((start + i * step, start + (i + 1) * step, start + i * step, idx) for i in range(n)))
    return [_even_spurt(start, end, words_in_text, idx)]


def _even_spurt(start: float, end: float, words_in_text: int, idx: int) -> tuple[float, float, float, int]:
    """The one spurt of a turn without word times (end >= start): its words back to back over the turn."""
    n = max(1, words_in_text)
    return start, end, start + (n - 1) * (end - start) / n, idx


def _wpm(words: int, talk_s: float) -> float | None:
    if talk_s <= 0:
        return None
    return round(words / (talk_s / 60.0), 1)


def _sentiment(turns: list[dict]) -> dict:
    scored = [u for u in turns if u.get("sentiment") is not None]
    customer = [u for u in scored if u["speaker"] == "customer"]
    side = customer or [u for u in scored if u["speaker"] == "unknown"]
    if not side:
        return {"sentiment_start": None, "sentiment_end": None, "sentiment_change": None}
    felt = [u["sentiment"] for u in side if u["sentiment"]]
    if not felt:
        return {"sentiment_start": 0.0, "sentiment_end": 0.0, "sentiment_change": 0.0}
    n = min(SENTIMENT_TURNS, max(1, len(felt) // 3))
    # sum/len, not np.mean: the same value for these 1-3 turns (summed in order), without an array per call
    start, end = sum(felt[:n]) / n, sum(felt[-n:]) / n
    return {"sentiment_start": round(start, 3), "sentiment_end": round(end, 3),
            "sentiment_change": round(end - start, 3)}
