"""One call's QA scorecard as a self-contained HTML page (no external CSS, JS, fonts or images).

What a QA manager reads: the call's header, the score (with an AUTO-FAIL banner), every
criterion with its result, points and evidence, the metrics, flags, signals, a sentiment strip
along the call's timeline and the transcript with the evidence marked. Every time on the page
is a link to its utterance (`#u<utt_idx>`); with a recording, it also seeks the player there.

Safety: the page is rendered by Jinja2 with autoescaping, and its repeated rows by page_rows.py,
which escapes every data value the same way, so transcript text, evidence, matched words and
reasons are always text, never markup. The only script is the constant `SCRIPT` below:
it reads numbers from `data-` attributes and toggles classes, and never writes HTML. A Content
Security Policy allows that one script by its hash, so even markup that slipped through could not
run a script of its own.

This module renders; it writes no file (the store does).

Example:
    >>> html = render_scorecard({"call_id": "c-1"}, [], [], [], None, [], [])
    >>> html.startswith("<!doctype html>") and "c-1" in html
    True
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections import defaultdict

import jinja2
from markupsafe import Markup

from pipeline.flags import SEVERITY_RANK
from pipeline.page_rows import (RESULT_LABEL, axis, clock, criteria_sections, criterion_rows, flag_list, fmt, hit_rows,
                                metric_tiles, score_cards, secs, strip_cells, turn_rows)

# The page's only script. Clicking a time seeks the recording (the link itself scrolls to the
# utterance, with or without a recording); while it plays, the utterance being heard is outlined.
SCRIPT = """
(function () {
  document.documentElement.setAttribute("data-js", "ready");
  var player = document.getElementById("player");
  if (!player) return;
  var utts = Array.prototype.slice.call(document.querySelectorAll(".utt[data-start]"));
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-t]");
    if (!link) return;
    player.currentTime = parseFloat(link.getAttribute("data-t"));
    var playing = player.play();
    if (playing && playing.catch) playing.catch(function () {});
  });
  player.addEventListener("timeupdate", function () {
    var t = player.currentTime;
    utts.forEach(function (u) {
      var on = t >= parseFloat(u.getAttribute("data-start")) && t < parseFloat(u.getAttribute("data-end"));
      u.classList.toggle("playing", on);
    });
  });
})();
"""
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()


class _RowsEnvironment(jinja2.Environment):
    """`row.key` looks in the dict first: the page's data is rows as dicts, and Jinja's default (an attribute
    first) raised and caught an AttributeError for each of a page's ~600 lookups, 40% of its rendering time.
    A key named like a dict method is still read with row["key"] (the template writes card["items"])."""

    def getattr(self, obj, attribute):
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


_ENV = _RowsEnvironment(
    loader=jinja2.PackageLoader("pipeline", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    # Not looked at on disk again for each page (a stat and a lock, 10 us of a page): a process renders with the
    # template it started with, as it does with report.py and the fingerprint of both (scorecard.page_code).
    auto_reload=False,
)


def _started(call: dict) -> str:
    started = call.get("started_at")
    if isinstance(started, dt.datetime):
        return started.strftime("%Y-%m-%d %H:%M")
    if started:
        return str(started).replace("T", " ")[:16]
    return str(call["call_date"]) if call.get("call_date") else "—"


def _duration(call: dict, metrics: dict | None, utterances: list[dict]) -> float | None:
    for value in (call.get("duration_s"), (metrics or {}).get("duration_s")):
        if value:
            return float(value)
    return max((u["end_s"] for u in utterances if u.get("end_s") is not None), default=None)


def _cards(scorecards: list[dict], items: list[dict]) -> list[dict]:
    """The current version of each rubric (first of its cards: scorecard.bundles), with its items and a note of
    the other versions it was scored under."""
    by_rubric: dict[str, list[dict]] = defaultdict(list)
    for card in scorecards:
        by_rubric[card["rubric_id"]].append(card)
    out = []
    for rubric_id in sorted(by_rubric):
        versions = by_rubric[rubric_id]
        card = versions[0]
        mine = [i for i in items if i["rubric_id"] == rubric_id and i["rubric_version"] == card["rubric_version"]]
        pct, auto, shown = card.get("pct"), bool(card.get("auto_failed")), [_item(i) for i in mine]
        if auto:
            verdict = "auto-fail"
        elif pct is None or card.get("passed") is None:
            verdict = "na"
        else:
            verdict = "pass" if card["passed"] else "fail"
        out.append({
            **card,
            "verdict": verdict,
            "verdict_label": {"auto-fail": "AUTO-FAIL", "na": "Not applicable"}.get(verdict, verdict.upper()),
            "pct_text": "—" if pct is None else f"{pct:.0f}%" if float(pct).is_integer() else f"{pct:.1f}%",
            "pct_width": 0 if pct is None else max(0.0, min(100.0, float(pct))),
            "points_text": f"{fmt(card.get('points'))} / {fmt(card.get('max_points'))} points",
            "counts": {r: sum(1 for i in mine if i["result"] == r) for r in ("pass", "fail", "na")},
            "items": shown,
            "rows": criterion_rows(shown),
            "older": [{"version": c["rubric_version"], "pct": fmt(c.get("pct"), "{:.0f}", "%"),
                       "verdict": "auto-fail" if c.get("auto_failed") else
                       ("pass" if c.get("passed") else "fail" if c.get("passed") is False else "n.a.")}
                      for c in versions[1:]],
        })
    return out


def _item(item: dict) -> dict:
    evidence = item.get("evidence") or None
    result = item.get("result") or "na"
    return {
        "criterion_id": item["criterion_id"],
        "question": item.get("question") or item["criterion_id"].replace("_", " ").capitalize(),
        "result": result,
        "result_label": RESULT_LABEL.get(result, result),
        "points": "—" if result == "na" else f"{fmt(item.get('points'))} / {fmt(item.get('max_points'))}",
        "detail": item.get("detail") or "",
        "evidence": None if not evidence else {
            "utt_idx": evidence.get("utt_idx"), "text": evidence.get("text") or "",
            "href": "#transcript" if evidence.get("utt_idx") is None else f"#u{evidence['utt_idx']}",
            "t": secs(evidence.get("start_s")), "clock": clock(evidence.get("start_s"))},
    }


def _metrics(m: dict | None) -> list[tuple[str, str, str]]:
    """(label, value, note) tiles; a value not measured shows as —."""
    m = m or {}

    def pair(a, b, spec="{:.0f}"):
        return f"{fmt(m.get(a), spec)} / {fmt(m.get(b), spec)}"

    start, end, change = m.get("sentiment_start"), m.get("sentiment_end"), m.get("sentiment_change")
    return [
        ("Agent talk", clock(m.get("agent_talk_s")), ""),
        ("Customer talk", clock(m.get("customer_talk_s")), ""),
        ("Talk ratio", fmt(m.get("talk_ratio"), "{:.0%}"), "agent share of talk"),
        ("Silence", fmt(m.get("silence_s"), "{:.0f}", " s"), "between first and last turn"),
        ("Longest silence", fmt(m.get("max_silence_s"), "{:.1f}", " s"), ""),
        ("Overlap", fmt(m.get("overlap_s"), "{:.1f}", " s"), "both speaking"),
        ("Interruptions", pair("agent_interruptions", "customer_interruptions"),
         f"agent / customer (total {fmt(m.get('interruptions'))})"),
        ("Words per minute", pair("agent_wpm", "customer_wpm"), "agent / customer"),
        ("Turns", fmt(m.get("turns")), ""),
        ("Customer sentiment", f"{fmt(start, '{:+.2f}')} → {fmt(end, '{:+.2f}')}",
         f"change {fmt(change, '{:+.2f}')}"),
    ]


def _strip(utterances: list[dict], duration: float | None) -> dict:
    """Sentiment cells in a 1000-unit-wide SVG, one lane per side of the call, and the time axis under them."""
    end = max([duration or 0.0] + [u.get("end_s") or 0.0 for u in utterances]) or 1.0
    return {"cells": strip_cells(utterances, end), "axis": axis(end)}


def render_scorecard(call: dict, utterances: list[dict], scorecards: list[dict], items: list[dict],
                     metrics: dict | None, hits: list[dict], flags: list[dict],
                     audio_href: str | None = None, fingerprint: str | None = None) -> str:
    """The whole HTML document of one call's scorecard (rows of the tables in pipeline/schemas.py).

    scorecards come in scorecard.bundles' order: of each rubric, the version configured now first, shown in
    full; the other versions it was scored under are named. Items may
    carry `question`; evidence is {utt_idx, start_s, text} or None. audio_href, when given, is
    the recording's URL relative to the page: time links then seek it. fingerprint, when given, is written
    into the page's head: what it was rendered from (pipeline/scorecard.py), so it need not be rendered again.
    """
    utterances = sorted(utterances, key=lambda u: u["utt_idx"])
    cards = _cards(scorecards, items)
    cited: dict[int, list[dict]] = defaultdict(list)
    for card in cards:
        for item in card["items"]:
            if item["evidence"] and item["evidence"]["utt_idx"] is not None:
                cited[item["evidence"]["utt_idx"]].append(item)
    hits = sorted(hits, key=lambda h: (h.get("start_s") or 0.0, h["signal_id"]))
    signals_at: dict[int, list[str]] = defaultdict(list)
    for hit in hits:
        if hit["signal_id"] not in signals_at[hit["utt_idx"]]:
            signals_at[hit["utt_idx"]].append(hit["signal_id"])
    duration = _duration(call, metrics, utterances)
    flags = sorted(flags, key=lambda f: (SEVERITY_RANK.get(f.get("severity"), 9), f["flag_id"]))
    page = _ENV.get_template("scorecard.html.j2").render(
        call=call,
        started=_started(call),
        duration=clock(duration),
        source="imported transcript" if call.get("asr_model") == "transcript" else (call.get("asr_model") or ""),
        cards=cards,
        score_cards=score_cards(cards),
        criteria=criteria_sections(cards),
        auto_failed=any(c["auto_failed"] for c in cards),
        metric_tiles=metric_tiles(_metrics(metrics)),
        has_metrics=metrics is not None,
        talk_ratio=(metrics or {}).get("talk_ratio"),
        flags=flags,
        flag_list=flag_list(flags),
        hits=hits,
        hit_rows=hit_rows(hits),
        strip=_strip(utterances, duration),
        turns=turn_rows(utterances, cited, signals_at),
        n_turns=len(utterances),
        audio_href=audio_href,
        fingerprint=fingerprint,
        script=Markup(SCRIPT),
        csp=f"script-src '{SCRIPT_HASH}'; object-src 'none'; base-uri 'none'; form-action 'none'; "
            "connect-src 'none'; frame-src 'none'",
    )
    return page
