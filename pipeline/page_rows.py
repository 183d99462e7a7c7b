"""The scorecard page's repeated rows — one per utterance, signal hit and criterion — as HTML.

Every call gets a page, so these rows are most of a night's page rendering. Through Jinja each
value of each row cost a lookup and an escape call (about 600 a page, 0.64 ms); here a row is
one f-string, and the page takes 0.35 ms. The rule that keeps this safe is the template's: every
value that comes from the call's data passes through `_e` (markupsafe's escaping), even ids and
labels that are plain today. Only what this module makes itself goes in unescaped: formatted
numbers, times and colours, and utterance indexes, which must be ints. The rest of the page is
the Jinja template (templates/scorecard.html.j2), which places these rows as Markup.
test_report puts markup into every value a row writes and requires it to stay text.
"""
from __future__ import annotations

import functools

from markupsafe import Markup, escape

RESULT_LABEL = {"pass": "Pass", "fail": "Fail", "na": "N/A"}
SPEAKER_LABEL = {"agent": "Agent", "customer": "Customer"}
LANE_Y = {"agent": 2, "customer": 22}  # the sentiment strip's rows; any other speaker sits between them
NO_EVIDENCE = '<span class="muted">—</span>'


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


def _who(speaker: str | None) -> str:
    """The speaker as a CSS class: the row's own value, escaped, as the template wrote it."""
    return speaker if speaker in SPEAKER_LABEL else _e(speaker or "unknown")


def _idx(value) -> int:
    """An utterance index as written into ids and links: an int, or the row is refused rather than escaped."""
    if type(value) is not int:
        raise TypeError(f"utterance index {value!r} is not an integer")
    return value


def strip_cells(utterances: list[dict], end: float) -> Markup:
    """The sentiment strip's cells in a 1000-unit-wide SVG: x and width from the utterance's times."""
    out = []
    for u in utterances:
        idx, start, s, speaker = _idx(u["utt_idx"]), u.get("start_s") or 0.0, u.get("sentiment"), u.get("speaker")
        width = max(2.0, ((u.get("end_s") or start) - start) / end * 1000)
        title = _e(f"{clock(start)} {speaker or 'unknown'}: " + ("not scored" if s is None else f"sentiment {s:+.2f}"))
        out.append(f'      <a href="#u{idx}"><rect class="cell" data-utt="{idx}" x="{start / end * 1000:.1f}" '
                   f'y="{LANE_Y.get(speaker, 12)}" width="{width:.1f}" height="16" fill="{sentiment_colour(s)}">'
                   f'<title>{title}</title></rect></a>\n')
    return Markup("".join(out))


def criterion_rows(items: list[dict]) -> Markup:
    """One table row per criterion of a scorecard (items as report._item makes them)."""
    out = []
    for item in items:
        result, cid, evidence = _e(item["result"]), _e(item["criterion_id"]), item["evidence"]
        detail = " · " + _e(item["detail"]) if item["detail"] else ""
        if evidence:
            evidence = (f'<a class="t" href="{_e(evidence["href"])}" data-t="{evidence["t"]}">{evidence["clock"]}</a>\n'
                        f'          <p class="quote evidence-text">{_e(evidence["text"])}</p>')
        out.append(f'      <tr class="crit result-{result}" data-criterion="{cid}">\n'
                   f'        <td><div class="q">{_e(item["question"])}</div><div class="d">{cid}{detail}</div></td>\n'
                   f'        <td><span class="badge {result}">{_e(item["result_label"])}</span></td>\n'
                   f'        <td class="num">{_e(item["points"])}</td>\n'
                   f'        <td>{evidence or NO_EVIDENCE}</td>\n'
                   f'      </tr>\n')
    return Markup("".join(out))


def hit_rows(hits: list[dict]) -> Markup:
    """One table row per signal hit, in time order."""
    out = []
    for h in hits:
        sid, speaker, category, start = _e(h["signal_id"]), h.get("speaker"), h.get("category"), h.get("start_s")
        category = f'<span class="muted cat">{_e(category)}</span>' if category else ""
        link = f'<a class="t" href="#u{_idx(h["utt_idx"])}" data-t="{secs(start)}">{clock(start)}</a>'
        out.append(f'      <tr class="hit" data-signal="{sid}">\n'
                   f'        <td>{link}</td>\n'
                   f'        <td><b>{sid}</b>{category}</td>\n'
                   f'        <td><span class="who {_who(speaker)}">{_e(speaker or "—")}</span></td>\n'
                   f'        <td class="matched">“{_e(h.get("matched_text") or "")}”</td>\n'
                   f'      </tr>\n')
    return Markup("".join(out))


def turn_rows(utterances: list[dict], cited: dict[int, list[dict]], signals_at: dict[int, list[str]]) -> Markup:
    """The transcript: one block per utterance, the evidence for a criterion marked, its chips under it."""
    out = []
    for u in utterances:
        idx, speaker, start, s = _idx(u["utt_idx"]), u.get("speaker"), u.get("start_s"), u.get("sentiment")
        who, items, signals = _who(speaker), cited.get(idx, ()), signals_at.get(idx, ())
        chips = "".join(f'<span class="chip {_e(i["result"])}">{_e(i["result_label"])} · '
                        f'{_e(i["criterion_id"])}</span>' for i in items)
        chips += "".join(f'<span class="chip">{_e(signal)}</span>' for signal in signals)
        tag = "mark" if items else "span"
        out.append(f'  <div class="utt {who}{" evidence" if items else ""}" id="u{idx}" data-start="{secs(start)}" '
                   f'data-end="{secs(u.get("end_s"))}">\n'
                   f'    <a class="t" href="#u{idx}" data-t="{secs(start)}">{clock(start)}</a>\n'
                   f'    <span class="who {who}">{SPEAKER_LABEL.get(speaker, "Unknown")}</span>\n'
                   f'    <div class="body">\n'
                   f'<{tag} class="text">{_e(u["text"])}</{tag}>'
                   + (f'      <div class="chips">\n{chips}      </div>\n' if chips else "") +
                   f'    </div>\n'
                   f'    <span class="dot" style="background: {sentiment_colour(s)}" '
                   f'title="sentiment {fmt(s, "{:+.2f}")}"></span>\n'
                   f'  </div>\n')
    return Markup("".join(out))
