"""The scorecard page's repeated parts — per utterance, signal hit, criterion, rubric, flag, metric — as HTML.

Every call gets a page, so these parts are most of a night's page rendering. Through Jinja each
value of each row cost a lookup and an escape call (about 600 a page, 0.64 ms); here a row is
one f-string, and the page takes 0.35 ms. The rule that keeps this safe is the template's: every
value that comes from the call's data passes through `_e` (markupsafe's escaping), or `_label`
(the same, remembered for values that recur from call to call), even ids and labels that are plain
today. Only what this module makes itself goes in unescaped: formatted numbers, times and colours,
and utterance indexes and counts, which must be ints. The rest of the page is the Jinja template
(templates/scorecard.html.j2), which places these parts as Markup.
test_report puts markup into every value a row writes and requires it to stay text.
"""
from __future__ import annotations

import functools

from markupsafe import Markup, escape

RESULT_LABEL = {"pass": "Pass", "fail": "Fail", "na": "N/A"}
SPEAKER_LABEL = {"agent": "Agent", "customer": "Customer"}
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
    """The seconds a time link seeks to, as written in its data-t attribute."""
    return "0" if seconds is None else f"{max(0.0, float(seconds)):.2f}"


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


def _idx(value) -> int:
    """An utterance index as written into ids and links: an int, or the row is refused rather than escaped."""
    if type(value) is not int:
        raise TypeError(f"utterance index {value!r} is not an integer")
    return value


def strip_cells(utterances: list[dict], end: float) -> Markup:
    """The sentiment strip's cells in a 1000-unit-wide SVG: x and width from the utterance's times."""
    out = []
    for u in utterances:
        idx, start = _idx(u["utt_idx"]), u.get("start_s") or 0.0
        width = max(2.0, ((u.get("end_s") or start) - start) / end * 1000)
        lane, colour, said = _lane(u.get("speaker"), u.get("sentiment"))
        out.append(f'      <a href="#u{idx}"><rect class="cell" data-utt="{idx}" x="{start / end * 1000:.1f}" '
                   f'y="{lane}" width="{width:.1f}" height="16" fill="{colour}">'
                   f'<title>{clock(start)} {said}</title></rect></a>\n')
    return Markup("".join(out))


@functools.lru_cache(maxsize=8192, typed=True)  # a few speakers times a few hundred scores
def _lane(speaker, score: float | None) -> tuple[int, str, str]:
    """A strip cell's y, colour and the escaped end of its title (after its time)."""
    said = f"{speaker or 'unknown'}: " + ("not scored" if score is None else f"sentiment {score:+.2f}")
    return LANE_Y.get(speaker, 12), sentiment_colour(score), _e(said)


def criterion_rows(items: list[dict]) -> Markup:
    """One table row per criterion of a scorecard (items as report._item makes them)."""
    out = []
    for item in items:
        result, cid, evidence = _label(item["result"]), _label(item["criterion_id"]), item["evidence"]
        detail = " · " + _label(item["detail"]) if item["detail"] else ""
        if evidence:
            evidence = (f'<a class="t" href="{_label(evidence["href"])}" data-t="{evidence["t"]}">{evidence["clock"]}'
                        f'</a>\n          <p class="quote evidence-text">{_e(evidence["text"])}</p>')
        out.append(f'      <tr class="crit result-{result}" data-criterion="{cid}">\n'
                   f'        <td><div class="q">{_label(item["question"])}</div>'
                   f'<div class="d">{cid}{detail}</div></td>\n'
                   f'        <td><span class="badge {result}">{_label(item["result_label"])}</span></td>\n'
                   f'        <td class="num">{_label(item["points"])}</td>\n'
                   f'        <td>{evidence or NO_EVIDENCE}</td>\n'
                   f'      </tr>\n')
    return Markup("".join(out))


def hit_rows(hits: list[dict]) -> Markup:
    """One table row per signal hit, in time order."""
    out = []
    for h in hits:
        sid, speaker, category, start = _label(h["signal_id"]), h.get("speaker"), h.get("category"), h.get("start_s")
        category = f'<span class="muted cat">{_label(category)}</span>' if category else ""
        link = f'<a class="t" href="#u{_idx(h["utt_idx"])}" data-t="{secs(start)}">{clock(start)}</a>'
        out.append(f'      <tr class="hit" data-signal="{sid}">\n'
                   f'        <td>{link}</td>\n'
                   f'        <td><b>{sid}</b>{category}</td>\n'
                   f'        <td><span class="who {_who(speaker)}">{_label(speaker or "—")}</span></td>\n'
                   f'        <td class="matched">“{_e(h.get("matched_text") or "")}”</td>\n'
                   f'      </tr>\n')
    return Markup("".join(out))


def turn_rows(utterances: list[dict], cited: dict[int, list[dict]], signals_at: dict[int, list[str]]) -> Markup:
    """The transcript: one block per utterance, the evidence for a criterion marked, its chips under it."""
    out = []
    for u in utterances:
        idx, speaker, start = _idx(u["utt_idx"]), u.get("speaker"), u.get("start_s")
        items, signals = cited.get(idx, ()), signals_at.get(idx, ())
        who, t, tag = _who(speaker), secs(start), "mark" if items else "span"
        out.append(f'  <div class="utt {who}{" evidence" if items else ""}" id="u{idx}" data-start="{t}" '
                   f'data-end="{secs(u.get("end_s"))}">\n'
                   f'    <a class="t" href="#u{idx}" data-t="{t}">{clock(start)}</a>\n'
                   f'    <span class="who {who}">{SPEAKER_LABEL.get(speaker, "Unknown")}</span>\n'
                   f'    <div class="body">\n'
                   f'<{tag} class="text">{_e(u["text"])}</{tag}>'
                   + (_chips(items, signals) if items or signals else "")
                   + f'    </div>\n{_dot(u.get("sentiment"))}  </div>\n')
    return Markup("".join(out))


def _chips(items: list[dict], signals: list[str]) -> str:
    """Under an utterance: the criteria it is evidence for, then the signals that fired on it."""
    chips = "".join(f'<span class="chip {_label(i["result"])}">{_label(i["result_label"])} · '
                    f'{_label(i["criterion_id"])}</span>' for i in items)
    chips += "".join(f'<span class="chip">{_label(signal)}</span>' for signal in signals)
    return f'      <div class="chips">\n{chips}      </div>\n'


@functools.lru_cache(maxsize=8192, typed=True)  # as sentiment_colour: few distinct scores
def _dot(score: float | None) -> str:
    """An utterance's sentiment dot, its line of the transcript."""
    return (f'    <span class="dot" style="background: {sentiment_colour(score)}" '
            f'title="sentiment {fmt(score, "{:+.2f}")}"></span>\n')


def score_cards(cards: list[dict]) -> Markup:
    """The summary's score of each rubric (cards as report._cards makes them), with its failed criteria and the
    other versions it was scored under."""
    out = []
    for card in cards:
        rid, verdict, counts = _label(card["rubric_id"]), _label(card["verdict"]), card["counts"]
        missed = "".join(f'<a href="#criteria-{rid}" class="chip fail">{_label(i["criterion_id"])}</a>'
                         for i in card["items"] if i["result"] == "fail")
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
    return Markup("".join(out) or NOT_SCORED)


def criteria_sections(cards: list[dict]) -> Markup:
    """A table of criteria per rubric (cards as report._cards makes them, each with its criterion_rows)."""
    return Markup("".join(
        f'<section class="criteria" id="criteria-{_label(card["rubric_id"])}">\n'
        f'  <h2>Criteria <small>{_label(card["rubric_id"])} v{_label(card["rubric_version"])}</small></h2>\n'
        '  <table>\n'
        '    <thead><tr><th>Criterion</th><th>Result</th><th class="num">Points</th><th>Evidence</th></tr></thead>\n'
        f'    <tbody>\n{card["rows"]}    </tbody>\n'
        '  </table>\n'
        '</section>\n' for card in cards))


def flag_list(flags: list[dict]) -> Markup:
    """The call's flags, in the order given."""
    out = []
    for f in flags:
        severity, reason = f.get("severity"), f.get("reason")
        reason = f" — {_e(reason)}" if reason else ""
        severity = f'<span class="sev {_label(severity or "")}">{_label(severity or "—")}</span>'
        out.append(f'      <li class="flag">{severity}'
                   f'<span><span class="flag-id">{_label(f["flag_id"])}</span>{reason}</span></li>\n')
    return Markup(f'    <ul class="flags">\n{"".join(out)}    </ul>\n' if out else NO_FLAGS)


def metric_tiles(tiles: list[tuple[str, str, str]]) -> Markup:
    """One tile per (label, value, note); a tile without a note has no note line."""
    out = []
    for label, value, note in tiles:
        note = f'<div class="n">{_label(note)}</div>' if note else ""
        out.append(f'    <div class="tile"><div class="k">{_label(label)}</div><div class="v">{_label(value)}</div>'
                   f'{note}</div>\n')
    return Markup("".join(out))


def axis(end: float) -> Markup:
    """The sentiment strip's time axis under a call of `end` seconds."""
    return Markup("".join(f'<span style="left: {x}%">{clock(end * share)}</span>' for x, share in TICKS))
