"""The scorecard page's repeated parts — per utterance, signal hit, criterion, rubric, flag, metric — as HTML.

Every call gets a page, so these parts are most of a night's page rendering. Through Jinja each
value of each row cost a lookup and an escape call (about 600 a page, 0.64 ms); here a row is
one f-string, and the page takes 0.35 ms. The rule that keeps this safe was the template's: every
value that comes from the call's data passes through `_e` (markupsafe's escaping), or `_label`
(the same, remembered for values that recur from call to call), even ids and labels that are plain
today. Only what this module makes itself goes in unescaped: formatted numbers, times and colours,
and utterance indexes and counts, which must be ints. The rows are read column by column
(call_rows.Rows: a list per column), and the parts that recur from page to page (a criterion's row
around its detail and evidence, a hit's row around its time and words) are made once and remembered.
The rest of the page is report.py, which places these parts.
test_report puts markup into every value a row writes and requires it to stay text.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

from markupsafe import escape

from pipeline.call_rows import Rows

RESULT_LABEL = {"pass": "Pass", "fail": "Fail", "na": "N/A"}
SPEAKER_LABEL = {"agent": "Agent", "customer": "Customer"}
WHO = {speaker: (speaker, label) for speaker, label in SPEAKER_LABEL.items()}  # a speaker's CSS class and label
LANE_Y = {"agent": 2, "customer": 22}  # the sentiment strip's rows; any other speaker sits between them
NO_EVIDENCE = '<span class="muted">—</span>'
NOT_SCORED = ('  <div class="score-card"><h2>QA score</h2><p class="empty">Not scored: no speech, or no rubric '
              'applies to this call.</p></div>\n')
NO_FLAGS = '<p class="empty">No flags: nothing on this call needs a coach.</p>'
TICKS = (("0", 0), ("25", 0.25), ("50", 0.5), ("75", 0.75), ("100", 1))  # the time axis: left %, share of the call


def clock(seconds: float | None) -> str:
    """0:07, 12:45, 1:02:03."""
    if seconds is None:
        return "—"
    return _clock(max(0, int(seconds)))


@functools.lru_cache(maxsize=8192)  # a page writes the same few hundred seconds over and over
def _clock(s: int) -> str:
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def secs(seconds: float | None) -> str:
    """The seconds a time link seeks to, as written in its data-t attribute (0.00 for any not above 0)."""
    if seconds is None:
        return "0"
    seconds = float(seconds)
    return f"{seconds:.2f}" if seconds > 0 else "0.00"


@functools.lru_cache(maxsize=8192)  # scores come to 2 decimals or so: few distinct values, each drawn twice a turn
def sentiment_colour(score: float | None) -> str:
    """Red (-1) through grey (0) to green (+1); pale grey when unscored."""
    if score is None:
        return "#e3e6ea"
    grey, end = (0x9a, 0xa3, 0xad), ((0xd1, 0x3b, 0x3b) if score < 0 else (0x23, 0x9b, 0x56))
    f = min(1.0, abs(float(score))) ** 0.7      # moderate scores still show their side
    return "#" + "".join(f"{round(g + (e - g) * f):02x}" for g, e in zip(grey, end))


def fmt(value, spec: str = "{:g}", suffix: str = "") -> str:
    return "—" if value is None else spec.format(value) + suffix


def _e_all(values: list) -> list[str]:
    """_e of each value: for a page's texts, escaped as one string and cut apart again (a sixth of the cost)."""
    try:
        joined = "\0".join(values)
    except TypeError:  # not all text
        return [_e(value) for value in values]
    if joined.count("\0") != len(values) - 1:  # a text holding the separator, or no text at all
        return [_e(value) for value in values]
    return _e(joined).split("\0")


def _e(value) -> str:
    """markupsafe.escape's text (the same entities), at a third of its cost on the short strings of a row."""
    if type(value) is not str:
        return str(escape(value))
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace(
        "'", "&#39;")


def _label(value) -> str:
    """_e of a value that recurs from call to call (an id, a label, a question, a speaker)."""
    return _escaped_label(value) if type(value) is str else _e(value)


@functools.lru_cache(maxsize=8192)  # a page has some 150 such values, nearly all seen on the pages before it
def _escaped_label(value: str) -> str:
    return _e(value)


def _who(speaker: str | None) -> str:
    """The speaker as a CSS class: the row's own value, escaped, as the template wrote it."""
    return speaker if speaker in SPEAKER_LABEL else _label(speaker or "unknown")


def _ints(values: list) -> list[int]:
    """Utterance indexes as written into ids and links: ints, or the page is refused rather than escaped."""
    if {*map(type, values)} - {int}:
        bad = next(v for v in values if type(v) is not int)
        raise TypeError(f"utterance index {bad!r} is not an integer")
    return values


def times(starts: list) -> dict:
    """start -> (its data-t seconds, its clock), for the starts of a page's utterances: the transcript, the strip,
    the hits and the evidence write the same few times (when.get(start) or (secs(start), clock(start)))."""
    return {start: (secs(start), clock(start)) for start in starts}


@functools.lru_cache(maxsize=8192, typed=True)  # a few speakers times a few hundred scores
def _lane(speaker, score: float | None) -> tuple[int, str, str]:
    """A strip cell's y, colour and the escaped end of its title (after its time)."""
    said = f"{speaker or 'unknown'}: " + ("not scored" if score is None else f"sentiment {score:+.2f}")
    return LANE_Y.get(speaker, 12), sentiment_colour(score), _e(said)


def hit_rows(hits: Rows, when: dict) -> str:
    """One table row per signal hit, in the order given (time order); when: times() of the utterances' starts."""
    out = []
    for sid, idx, start, speaker, matched, category in zip(hits["signal_id"], _ints(hits["utt_idx"]),
                                                            hits["start_s"], hits["speaker"],
                                                            _e_all([m or "" for m in hits["matched_text"]]),
                                                            hits["category"]):
        head, middle = _remembered(_hit_parts, sid, category, speaker)
        t, clk = when.get(start) or (secs(start), clock(start))
        out.append(f'{head}{idx}" data-t="{t}">{clk}{middle}{matched}”</td>\n      </tr>\n')
    return "".join(out)


def _remembered(parts, *key):
    """parts(*key) from its cache, or made again for a key that cannot be remembered (a value not hashable)."""
    try:
        return parts(*key)
    except TypeError:
        return parts.__wrapped__(*key)


@functools.lru_cache(maxsize=8192, typed=True)  # typed: 1, 1.0 and True are written differently
def _hit_parts(signal_id, category, speaker) -> tuple[str, str]:
    """A hit's row before its utterance index, and from its time's end to its matched words."""
    sid = _label(signal_id)
    category = f'<span class="muted cat">{_label(category)}</span>' if category else ""
    return (f'      <tr class="hit" data-signal="{sid}">\n        <td><a class="t" href="#u',
            f'</a></td>\n        <td><b>{sid}</b>{category}</td>\n'
            f'        <td><span class="who {_who(speaker)}">{_label(speaker or "—")}</span></td>\n'
            f'        <td class="matched">“')


class Criteria(NamedTuple):
    """A card's criteria as its table rows, the result of each as stored, the ids of those failed (escaped) and
    the chip each one cited as evidence puts under its utterance: (utt_idx, chip)."""
    rows: str
    results: list[str]
    failed: list[str]
    cited: list[tuple[object, str]]


def criterion_rows(items: Rows, picked: list[int], when: dict) -> Criteria:
    """One table row per criterion of a scorecard: the items at these positions (when: times() of the utterances'
    starts, which evidence quotes)."""
    rows, failed, cited = [], [], []
    stored, ids, questions, points, most, evidences, details = (
        items[name] for name in ("result", "criterion_id", "question", "points", "max_points", "evidence", "detail"))
    for i in picked:
        result, evidence, detail = stored[i] or "na", evidences[i], details[i]
        key = (result, ids[i], questions[i]) + ((None, None) if result == "na" else (points[i], most[i]))
        head, tail, chip = _remembered(_criterion_parts, *key)
        detail = " · " + _label(detail) if detail else ""
        if evidence:
            at, start = evidence.get("utt_idx"), evidence.get("start_s")
            href = _label("#transcript" if at is None else f"#u{at}")
            t, clk = when.get(start) or (secs(start), clock(start))
            evidence = (f'<a class="t" href="{href}" data-t="{t}">{clk}</a>\n'
                        f'          <p class="quote evidence-text">{_e(evidence.get("text") or "")}</p>')
            if at is not None:
                cited.append((at, chip))
        rows.append(f"{head}{detail}{tail}{evidence or NO_EVIDENCE}</td>\n      </tr>\n")
        if result == "fail":
            failed.append(_label(ids[i]))
    return Criteria("".join(rows), [stored[i] for i in picked], failed, cited)


@functools.lru_cache(maxsize=8192, typed=True)  # a rubric's criteria, their results and points: few, every page
def _criterion_parts(result, criterion_id, question, points, max_points) -> tuple[str, str, str]:
    """A criterion's row up to its detail, from its detail to its evidence, and its chip under the evidence;
    its points are none when it does not apply (na)."""
    r, cid, label = _label(result), _label(criterion_id), _label(RESULT_LABEL.get(result, result))
    question = _label(question or criterion_id.replace("_", " ").capitalize())
    points = "—" if result == "na" else f"{fmt(points)} / {fmt(max_points)}"
    return (f'      <tr class="crit result-{r}" data-criterion="{cid}">\n'
            f'        <td><div class="q">{question}</div><div class="d">{cid}',
            f'</div></td>\n'
            f'        <td><span class="badge {r}">{label}</span></td>\n'
            f'        <td class="num">{_label(points)}</td>\n'
            f'        <td>',
            f'<span class="chip {r}">{label} · {cid}</span>')


def turn_rows(turns: Rows, end: float, when: dict, cited: dict[int, list[str]],
              signals_at: dict[int, list[str]]) -> tuple[str, str]:
    """The transcript: one block per utterance (turns sorted; when: times() of their starts), the evidence for a
    criterion marked, its chips (cited: the criteria's, signals_at: the signals' ids) under it; and the sentiment
    strip's cells in a 1000-unit-wide SVG (end: the strip's end), x and width from the utterance's times."""
    rows, cells = [], []
    for idx, speaker, start, stop, text, score in zip(_ints(turns["utt_idx"]), turns["speaker"], turns["start_s"],
                                                      turns["end_s"], _e_all(turns["text"]), turns["sentiment"]):
        who, label = WHO.get(speaker) or (_who(speaker), "Unknown")
        chips, signals = cited.get(idx), signals_at.get(idx)
        t, clk = when[start]
        tag = "mark" if chips else "span"
        rows.append(f'  <div class="utt {who}{" evidence" if chips else ""}" id="u{idx}" data-start="{t}" '
                    f'data-end="{secs(stop)}">\n'
                    f'    <a class="t" href="#u{idx}" data-t="{t}">{clk}</a>\n'
                    f'    <span class="who {who}">{label}</span>\n'
                    f'    <div class="body">\n'
                    f'<{tag} class="text">{text}</{tag}>'
                    + (_chips(chips or (), signals or ()) if chips or signals else "")
                    + f'    </div>\n{_dot(score)}  </div>\n')
        if not start:
            start, clk = 0.0, clock(0.0)
        lane, colour, said = _lane(speaker, score)
        cells.append(f'      <a href="#u{idx}"><rect class="cell" data-utt="{idx}" x="{start / end * 1000:.1f}" '
                     f'y="{lane}" width="{max(2.0, ((stop or start) - start) / end * 1000):.1f}" height="16" '
                     f'fill="{colour}"><title>{clk} {said}</title></rect></a>\n')
    return "".join(rows), "".join(cells)


def _chips(chips: list[str], signals: list[str]) -> str:
    """Under an utterance: the criteria it is evidence for, then the signals that fired on it."""
    chips = "".join(chips) + "".join(f'<span class="chip">{_label(signal)}</span>' for signal in signals)
    return f'      <div class="chips">\n{chips}      </div>\n'


@functools.lru_cache(maxsize=8192, typed=True)  # as sentiment_colour: few distinct scores
def _dot(score: float | None) -> str:
    """An utterance's sentiment dot, its line of the transcript."""
    return (f'    <span class="dot" style="background: {sentiment_colour(score)}" '
            f'title="sentiment {fmt(score, "{:+.2f}")}"></span>\n')


def score_cards(cards: list[dict]) -> str:
    """The summary's score of each rubric (cards as report._cards makes them), with its failed criteria and the
    other versions it was scored under."""
    out = []
    for card in cards:
        rid, verdict, counts = _label(card["rubric_id"]), _label(card["verdict"]), card["counts"]
        missed = "".join(f'<a href="#criteria-{rid}" class="chip fail">{cid}</a>' for cid in card["failed"])
        older = ", ".join(f'v{_label(o["version"])} {_label(o["pct"])} ({_label(o["verdict"])})'
                          for o in card["older"])
        out.append(
            f'  <div class="score-card" id="score-{rid}">\n'
            f'    <h2>QA score <small>{rid} · version {_label(card["rubric_version"])}</small></h2>\n'
            f'    <div class="score {verdict}">\n'
            f'      <div class="pct">{_label(card["pct_text"])}</div>\n'
            f'      <div>\n'
            f'        <span class="verdict {verdict}">{_label(card["verdict_label"])}</span>\n'
            f'        <div class="muted">{_label(card["points_text"])}</div>\n'
            f'      </div>\n'
            f'    </div>\n'
            f'    <div class="{verdict}"><div class="bar"><span style="width: {_label(card["pct_width"])}%"></span>'
            f'</div></div>\n'
            f'    <div class="counts"><span><b>{counts["pass"]:d}</b> passed</span><span><b>{counts["fail"]:d}</b> '
            f'failed</span><span><b>{counts["na"]:d}</b> not applicable</span></div>\n'
            + (f'    <div class="missed"><span class="muted">Failed:</span>\n{missed}</div>\n' if missed else "")
            + (f'    <div class="older">Also scored under other versions of this rubric:\n{older}.</div>\n'
               if older else "")
            + '  </div>\n')
    return "".join(out) or NOT_SCORED


def criteria_sections(cards: list[dict]) -> str:
    """A table of criteria per rubric (cards as report._cards makes them, each with its criterion_rows)."""
    return "".join(
        f'<section class="criteria" id="criteria-{_label(card["rubric_id"])}">\n'
        f'  <h2>Criteria <small>{_label(card["rubric_id"])} v{_label(card["rubric_version"])}</small></h2>\n'
        '  <table>\n'
        '    <thead><tr><th>Criterion</th><th>Result</th><th class="num">Points</th><th>Evidence</th></tr></thead>\n'
        f'    <tbody>\n{card["rows"]}    </tbody>\n'
        '  </table>\n'
        '</section>\n' for card in cards)


def flag_list(flags: list[dict]) -> str:
    """The call's flags, in the order given."""
    out = []
    for f in flags:
        severity, reason = f.get("severity"), f.get("reason")
        reason = f" — {_e(reason)}" if reason else ""
        severity = f'<span class="sev {_label(severity or "")}">{_label(severity or "—")}</span>'
        out.append(f'      <li class="flag">{severity}'
                   f'<span><span class="flag-id">{_label(f["flag_id"])}</span>{reason}</span></li>\n')
    return f'    <ul class="flags">\n{"".join(out)}    </ul>\n' if out else NO_FLAGS


def metric_tiles(tiles: list[tuple[str, str, str]]) -> str:
    """One tile per (label, value, note); a tile without a note has no note line."""
    return "".join([_tile(*tile) for tile in tiles])


@functools.lru_cache(maxsize=16384)  # report._metrics' text: ten labels, values that recur from call to call
def _tile(label: str, value: str, note: str) -> str:
    note = f'<div class="n">{_label(note)}</div>' if note else ""
    return (f'    <div class="tile"><div class="k">{_label(label)}</div><div class="v">{_label(value)}</div>'
            f'{note}</div>\n')


def axis(end: float) -> str:
    """The sentiment strip's time axis under a call of `end` seconds."""
    return "".join(f'<span style="left: {x}%">{clock(end * share)}</span>' for x, share in TICKS)


def sentiment_label(m: dict) -> str:
    """Whose sentiment the metrics give: the customer's, or on a mono call (no side known) every turn's."""
    mono = m.get("agent_talk_s") is None and m.get("customer_talk_s") is None
    return "Sentiment (every turn: mono call)" if mono else "Customer sentiment"


# Whisper's mean word probability below which a turn was probably misheard (tiny.en on the demo calls: a fifth of
# turns; "And your birth date?" heard as "And your date?" at 0.63, a closing as "TEMA Lumbly Link" at 0.60)
LOW_CONFIDENCE = 0.65
SHOWN_UNSURE = 2  # of them, quoted


def listen_first(turns: Rows | list[dict], failed: bool) -> str | None:
    """What to tell a QA manager before they coach on a fail that may be ASR's, or None: the call failed something
    (a criterion or a flag) and some of the agent's turns (every turn, on a mono call) were heard with low
    confidence. turns: the call's utterances in order (speaker, start_s, text, confidence; a transcript has no
    confidence). Read by column: every page asks, and most calls have no such turn."""
    if not failed:
        return None
    turns = Rows.of(turns, ("speaker", "start_s", "text", "confidence"))
    speakers, confidence = turns["speaker"], turns["confidence"]
    if not any(c is not None and c < LOW_CONFIDENCE for c in confidence):
        return None
    whose = "agent" if "agent" in speakers else "unknown"
    said = [i for i, speaker in enumerate(speakers) if speaker == whose]
    unsure = [i for i in said if confidence[i] is not None and confidence[i] < LOW_CONFIDENCE]
    if not unsure:
        return None
    quoted = "; ".join(f'{clock(turns["start_s"][i])} "{_short(turns["text"][i])}" ({confidence[i]:.2f})'
                       for i in unsure[:SHOWN_UNSURE])
    owner = "the agent's" if whose == "agent" else "the"
    return (f"Listen before coaching on a fail: {len(unsure)} of {owner} {len(said)} turns were heard with low "
            f"confidence (below {LOW_CONFIDENCE}), e.g. {quoted}")


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[:most - 1].rstrip() + "…"
