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

import itertools
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from pipeline import intervals

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
    measured = measure([by_call.get(c["call_id"], []) for c in calls])
    return [{"call_id": c["call_id"], "call_date": c["call_date"], "duration_s": c.get("duration_s"), **m}
            for c, m in zip(calls, measured)]


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
    measured = measure([sorted(ts, key=lambda u: u["utt_idx"]) for ts in turns.values()])
    return {call_id: {"duration_s": durations.get(call_id), **m} for call_id, m in zip(turns, measured)}


def metrics_of(turns: list[dict]) -> dict:
    """The metrics of one call's turns, in utt_idx order."""
    return measure([turns])[0]


def measure(calls: list[list[dict]]) -> list[dict]:
    """The metrics of many calls (each its turns in utt_idx order) at once. Once their columns are read out of the
    rows, every step is an array operation over all their turns, with no Python loop per turn or per call."""
    t = _Turns.of(calls)
    n = len(calls)
    speech = intervals.islands(t.call, t.start, t.end, tie_break=np.arange(len(t.start)))
    gap_call, gap, after = intervals.gaps(speech)
    max_silence = intervals.group_max(n, gap_call, gap)
    longest = intervals.first_of_max(gap_call, gap, max_silence)
    said_by = {side: t.side == code for side, code in SIDE_CODES.items()}
    talk = {side: intervals.islands(t.call[mine], t.start[mine], t.end[mine]) for side, mine in said_by.items()}
    spurts = {side: _spurts_of(t, code) for side, code in SIDE_CODES.items()}
    cut_ins = {side: _cut_ins(spurts[side], spurts[other]) for side, other in (("agent", "customer"),
                                                                                ("customer", "agent"))}
    columns = {
        "talk": {side: intervals.per_call(n, isl.call, isl.until - isl.at).tolist() for side, isl in talk.items()},
        "words": {side: intervals.per_call(n, t.call[mine], t.words[mine]).tolist() for side, mine in said_by.items()},
        "sided": ((intervals.per_call(n, t.call[t.side >= 0]) > 0) | (intervals.per_call(n, t.call) == 0)).tolist(),
        "overlap": intervals.overlap(n, talk["agent"], talk["customer"]).tolist(),
        "silence": intervals.per_call(n, gap_call, gap).tolist(),
        "max_silence": max_silence.tolist(),
        "turns": intervals.per_call(n, t.call, t.new_run.astype(float)).astype(int).tolist(),
    }
    moments = _moments(n, cut_ins, t, speech, gap_call[longest], after[longest])
    return [_row(k, columns, moments[k], sentiment) for k, sentiment in enumerate(_sentiment(n, t))]


SIDE_CODES = {"agent": 0, "customer": 1}  # _Turns.side: MONO for `unknown`, -1 for any other speaker
MONO = -2


class _Turns(NamedTuple):
    """The columns of many calls' turns that metrics read, as arrays in turn order."""
    call: np.ndarray       # which call (0..n-1)
    start: np.ndarray
    end: np.ndarray        # never before start: a turn timed to end before it starts is taken as a moment
    utt_idx: np.ndarray
    side: np.ndarray       # SIDE_CODES, MONO or -1
    words: np.ndarray      # words in the text
    new_run: np.ndarray    # the first turn of a run of one speaker
    sentiment: np.ndarray  # NaN where not scored
    timed: list[tuple[int, list[dict]]]  # (turn, its word times) of turns that have them

    @classmethod
    def of(cls, calls: list[list[dict]]) -> _Turns:
        rows = [u for turns in calls for u in turns]
        size = len(rows)
        call = np.repeat(np.arange(len(calls)), [len(turns) for turns in calls])
        start = np.fromiter((u["start_s"] for u in rows), float, size)
        speaker = [u["speaker"] for u in rows]
        codes: dict[str, int] = {}
        said = np.fromiter((codes.setdefault(s, len(codes)) for s in speaker), np.int64, size)
        new_run = np.ones(size, dtype=bool)
        new_run[1:] = (call[1:] != call[:-1]) | (said[1:] != said[:-1])
        sentiment = np.fromiter((np.nan if (v := u.get("sentiment")) is None else v for u in rows), float, size)
        return cls(call, start, np.maximum(np.fromiter((u["end_s"] for u in rows), float, size), start),
                   np.fromiter((u["utt_idx"] for u in rows), np.int64, size),
                   np.fromiter((SIDE_CODES.get(s, MONO if s == "unknown" else -1) for s in speaker), np.int64, size),
                   np.fromiter((len((u.get("text") or "").split()) for u in rows), np.int64, size), new_run,
                   sentiment, [(i, u["words"]) for i, u in enumerate(rows) if u.get("words")])


class _Spurts(NamedTuple):
    call: np.ndarray
    at: np.ndarray
    until: np.ndarray
    latest: np.ndarray   # when its last word starts
    utt_idx: np.ndarray  # the turn it starts in: of turns whose words start it at one instant, the first


def _spurts_of(t: _Turns, side: int) -> _Spurts:
    """A side's talk spurts in each call: its words closer than SPURT_GAP_S joined.

    Turns with word times bring their words; a turn without them (an imported transcript) is its words back to
    back over the turn, one spurt whose last word starts one word's length before its end.
    """
    mine = t.side == side
    even = np.flatnonzero(mine & ~np.isin(np.arange(len(t.start)), [i for i, _ in t.timed]))
    n = np.maximum(1, t.words[even])
    s, e = t.start[even], t.end[even]
    timed = [(i, w["start_s"], w["end_s"]) for i, words in t.timed if t.side[i] == side for w in words]
    rows = np.array([i for i, _, _ in timed], dtype=np.int64)
    w_start = np.array([a for _, a, _ in timed], dtype=float)
    w_end = np.maximum(np.array([b for _, _, b in timed], dtype=float), w_start)
    call, idx = np.concatenate([t.call[even], t.call[rows]]), np.concatenate([t.utt_idx[even], t.utt_idx[rows]])
    start, end = np.concatenate([s, w_start]), np.concatenate([e, w_end])
    last = np.concatenate([s + (n - 1) * (e - s) / n, w_start])
    runs = intervals.islands(call, start, end, SPURT_GAP_S, tie_break=idx)
    latest = np.maximum.reduceat(last[runs.order], runs.bounds) if len(runs.bounds) else np.empty(0)
    return _Spurts(runs.call, runs.at, runs.until, latest, idx[runs.first])


def _cut_ins(mine: _Spurts, theirs: _Spurts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(call, when, utt_idx) of each time a side cut in on the other, from their spurts.

    Whisper stretches the last word of a segment to the segment's end, so turn end times overlap the
    next speaker's start on most hand-overs. What marks talking over someone is that *they keep starting
    words*: X starts talking while Y is mid-spurt and Y starts a word INTERRUPT_MIN_S or more later. Y's spurts
    are disjoint and in order: only the last one starting before X's can be the one X cuts into.
    """
    k = intervals.last_before(mine.call, mine.at, theirs.call, theirs.at)
    into = np.maximum(k, 0)
    cut = (k >= 0)
    if len(theirs.at):
        cut &= (mine.at < theirs.until[into]) & (theirs.latest[into] >= mine.at + INTERRUPT_MIN_S)
    return mine.call[cut], mine.at[cut], mine.utt_idx[cut]


def _moments(n: int, cut_ins: dict, t: _Turns, speech: intervals.Islands, quiet_call: np.ndarray,
             resumed: np.ndarray) -> list[list[dict]]:
    """Each call's moments: its interruptions in time order (of one instant, the agent's first), then the turn
    that ended its longest silence (the first of equal silences)."""
    out: list[list[dict]] = [[] for _ in range(n)]
    for side in ("agent", "customer"):
        for k, at, idx in zip(*(a.tolist() for a in cut_ins[side])):
            out[k].append({"metric": f"{side}_interruptions", "utt_idx": idx, "start_s": round(at, 3)})
    for moments in out:
        if len(moments) > 1:
            moments.sort(key=lambda m: m["start_s"])
    rows = speech.first[resumed]
    for k, idx, at in zip(quiet_call.tolist(), t.utt_idx[rows].tolist(), t.start[rows].tolist()):
        out[k].append({"metric": "max_silence_s", "utt_idx": idx, "start_s": at})
    return out


def _row(k: int, col: dict, moments: list[dict], sentiment: dict) -> dict:
    agent_s, customer_s = col["talk"]["agent"][k], col["talk"]["customer"][k]
    # A mono call's turns are nobody's: who talked, overlapped or cut in cannot be told (null), not zero
    sided = col["sided"][k]
    by_agent = sum(m["metric"] == "agent_interruptions" for m in moments)
    by_customer = sum(m["metric"] == "customer_interruptions" for m in moments)
    return {
        "agent_talk_s": round(agent_s, 3) if sided else None,
        "customer_talk_s": round(customer_s, 3) if sided else None,
        "talk_ratio": round(agent_s / (agent_s + customer_s), 4) if sided and agent_s + customer_s else None,
        "silence_s": round(col["silence"][k], 3),
        "max_silence_s": round(col["max_silence"][k], 3),
        "overlap_s": round(col["overlap"][k], 3) if sided else None,
        "interruptions": by_agent + by_customer if sided else None,
        "agent_interruptions": by_agent if sided else None,
        "customer_interruptions": by_customer if sided else None,
        "agent_wpm": _wpm(col["words"]["agent"][k], agent_s),
        "customer_wpm": _wpm(col["words"]["customer"][k], customer_s),
        "turns": col["turns"][k],  # speaker changes + 1: the number of runs of one speaker
        **sentiment,
        "moments": moments,
    }


def _wpm(words: float, talk_s: float) -> float | None:
    if talk_s <= 0:
        return None
    return round(int(words) / (talk_s / 60.0), 1)


def _sentiment(n: int, t: _Turns) -> list[dict]:
    """Each call's customer sentiment at its start and end (mono calls: every turn's), from the turns that carry
    feeling: the mean of the first and of the last third of them, 1 to SENTIMENT_TURNS turns."""
    scored = ~np.isnan(t.sentiment)
    customer = scored & (t.side == SIDE_CODES["customer"])
    unknown = scored & (t.side == MONO)
    has_customer = intervals.per_call(n, t.call[customer]) > 0
    side = customer | (unknown & ~has_customer[t.call])
    has_side = intervals.per_call(n, t.call[side]) > 0
    felt = side & (t.sentiment != 0)
    call, value = t.call[felt], t.sentiment[felt]
    count = intervals.per_call(n, call).astype(int)
    take = np.minimum(SENTIMENT_TURNS, np.maximum(1, count // 3))
    # a turn's place among its call's felt turns: its rank in the whole array less its call's first rank
    place = np.arange(len(call)) - np.concatenate([[0], np.cumsum(count)[:-1]])[call] if len(call) else call
    first = intervals.per_call(n, call[place < take[call]], value[place < take[call]]) / take
    last = intervals.per_call(n, call[place >= (count - take)[call]], value[place >= (count - take)[call]]) / take
    out = []
    for has, felt_turns, start, end in zip(has_side.tolist(), count.tolist(), first.tolist(), last.tolist()):
        if not has:
            out.append({"sentiment_start": None, "sentiment_end": None, "sentiment_change": None})
        elif not felt_turns:
            out.append({"sentiment_start": 0.0, "sentiment_end": 0.0, "sentiment_change": 0.0})
        else:
            out.append({"sentiment_start": round(start, 3), "sentiment_end": round(end, 3),
                        "sentiment_change": round(end - start, 3)})
    return out


def _spurts(turns: list[dict]) -> list[tuple[float, float, float, int]]:
    """One speaker's talk spurts on one call, as (start, end, start of its last word, utt_idx of its first turn)."""
    found = _spurts_of(_Turns.of([[{"speaker": "agent", "start_s": 0.0, "end_s": 0.0, "text": "", **u}
                                   for u in turns]]), SIDE_CODES["agent"])
    return list(zip(found.at.tolist(), found.until.tolist(), found.latest.tolist(), found.utt_idx.tolist()))
