"""One call's QA scorecard as a self-contained HTML page (no external CSS, JS, fonts or images).

What a QA manager reads: the call's header, the score (with an AUTO-FAIL banner), every
criterion with its result, points and evidence, the metrics, flags, signals, a sentiment strip
along the call's timeline and the transcript with the evidence marked. Every time on the page
is a link to its utterance (`#u<utt_idx>`); with a recording, it also seeks the player there.

Safety: the page is written here and in page_rows.py, and every value they take from the call's data
passes through page_rows._e (markupsafe's escaping, as Jinja's autoescape applied it when the page was
a template), so transcript text, evidence, matched words and reasons are always text, never markup.
Only what this code makes itself goes in unescaped: numbers, times, counts, colours and the
constants below. The only script is the constant `SCRIPT` below:
it reads numbers from `data-` attributes and toggles classes, and never writes HTML. A Content
Security Policy allows that one script by its hash, so even markup that slipped through could not
run a script of its own.

The page is constant text (the style sheet is templates/scorecard.css) with the call's parts between;
a Jinja template had been a sixth of a page's cost (a context, an escape and a copy of each part, a str of
the whole page encoded again), so the constant parts are kept as UTF-8 and a page can be made as the
bytes its file holds (utf8=True) without a str of it at all. This module renders; it writes no file (the
store does).

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
from pathlib import Path

from pipeline.call_rows import Rows
from pipeline.flags import SEVERITY_RANK
from pipeline.page_rows import (_e, axis, clock, criteria_sections, criterion_rows, flag_list, fmt, hit_rows,
                                listen_first, metric_tiles, score_cards, sentiment_label, times, turn_rows)

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
# The columns a page reads of the tables with many rows a call: given as row dicts, they are turned into these.
TURN_COLUMNS = ("utt_idx", "speaker", "start_s", "end_s", "text", "sentiment", "confidence")
HIT_COLUMNS = ("signal_id", "utt_idx", "start_s", "speaker", "matched_text", "category")
ITEM_COLUMNS = ("rubric_id", "rubric_version", "criterion_id", "question", "result", "points", "max_points",
                "evidence", "detail")
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (f"script-src '{SCRIPT_HASH}'; object-src 'none'; base-uri 'none'; form-action 'none'; connect-src 'none'; "
       "frame-src 'none'")
STYLE = (Path(__file__).parent / "templates" / "scorecard.css").read_text(encoding="utf-8")


def _started(call: dict) -> str:
    started = call.get("started_at")
    if isinstance(started, dt.datetime):  # isoformat writes the same for a plain time (strftime: five times the cost)
        plain = started.tzinfo is None and started.year >= 1000
        return started.isoformat(" ", "minutes") if plain else started.strftime("%Y-%m-%d %H:%M")
    if started:
        return str(started).replace("T", " ")[:16]
    return str(call["call_date"]) if call.get("call_date") else "—"


def _duration(call: dict, metrics: dict | None, turns: Rows) -> float | None:
    for value in (call.get("duration_s"), (metrics or {}).get("duration_s")):
        if value:
            return float(value)
    return max((end for end in turns["end_s"] if end is not None), default=None)


def cards_in_order(cards: list[dict], current: set[tuple[str, int]] | None) -> list[dict]:
    """A call's scorecards, each rubric's current version (scorecard.current_rubrics) first and its other versions
    after it, newest first. A rubric whose configured version did not score this call is left out, as
    `current_scorecards` leaves it out (its version 2 claims other queues now, say): its old card, shown first,
    read as the call's verdict. Here, not in scorecard.py: page_code() covers it, so stored pages are redrawn."""
    if current is not None:
        shown = {c["rubric_id"] for c in cards if (c["rubric_id"], c["rubric_version"]) in current}
        cards = [c for c in cards if c["rubric_id"] in shown]
    now = current or set()
    return sorted(cards, key=lambda c: (c["rubric_id"], (c["rubric_id"], c["rubric_version"]) not in now,
                                        -c["rubric_version"]))


def _cards(scorecards: list[dict], items: Rows, when: dict) -> list[dict]:
    """The current version of each rubric (first of its cards: scorecard.bundles), with its criteria and a note
    of the other versions it was scored under (when: page_rows.times() of the utterances' starts)."""
    by_rubric: dict[str, list[dict]] = defaultdict(list)
    for card in scorecards:
        by_rubric[card["rubric_id"]].append(card)
    out = []
    for rubric_id in sorted(by_rubric):
        versions = by_rubric[rubric_id]
        card = versions[0]
        mine = [i for i, (rid, version) in enumerate(zip(items["rubric_id"], items["rubric_version"]))
                if rid == rubric_id and version == card["rubric_version"]]
        pct, auto, criteria = card.get("pct"), bool(card.get("auto_failed")), criterion_rows(items, mine, when)
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
            "counts": {r: criteria.results.count(r) for r in ("pass", "fail", "na")},
            "failed": criteria.failed,
            "cited": criteria.cited,
            "rows": criteria.rows,
            "older": [{"version": c["rubric_version"], "pct": fmt(c.get("pct"), "{:.0f}", "%"),
                       "verdict": "auto-fail" if c.get("auto_failed") else
                       ("pass" if c.get("passed") else "fail" if c.get("passed") is False else "n.a.")}
                      for c in versions[1:]],
        })
    return out


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
        (sentiment_label(m), f"{fmt(start, '{:+.2f}')} → {fmt(end, '{:+.2f}')}",
         f"change {fmt(change, '{:+.2f}')}"),
    ]


def _strip_end(turns: Rows, duration: float | None) -> float:
    """Where the sentiment strip (one lane per side of the call) and its time axis end, in seconds."""
    return max([duration or 0.0] + [stop or 0.0 for stop in turns["end_s"]]) or 1.0


def render_scorecard(call: dict, utterances: list[dict], scorecards: list[dict], items: list[dict],
                     metrics: dict | None, hits: list[dict], flags: list[dict],
                     audio_href: str | None = None, fingerprint: str | None = None,
                     utf8: bool = False) -> str | bytes:
    """The whole HTML document of one call's scorecard (rows of the tables in pipeline/schemas.py).

    scorecards come in scorecard.bundles' order: of each rubric, the version configured now first, shown in
    full; the other versions it was scored under are named. Items may
    carry `question`; evidence is {utt_idx, start_s, text} or None. audio_href, when given, is
    the recording's URL relative to the page: time links then seek it. fingerprint, when given, is written
    into the page's head: what it was rendered from (pipeline/scorecard.py), so it need not be rendered again.
    utf8: the page as the UTF-8 bytes its file holds, not as str (made from the constant parts' bytes).
    """
    turns = Rows.of(utterances, TURN_COLUMNS, ("utt_idx", "text"))
    turns = turns.sorted(turns["utt_idx"])
    when = times(turns["start_s"])
    cards = _cards(scorecards, Rows.of(items, ITEM_COLUMNS, ("rubric_id", "rubric_version", "criterion_id")), when)
    cited: dict[int, list[str]] = defaultdict(list)  # utt_idx -> the chips of the criteria it is evidence for
    for card in cards:
        for at, chip in card["cited"]:
            cited[at].append(chip)
    hits = Rows.of(hits, HIT_COLUMNS, ("signal_id", "utt_idx"))
    hits = hits.sorted([(start or 0.0, signal_id) for start, signal_id in zip(hits["start_s"], hits["signal_id"])])
    signals_at: dict[int, list[str]] = defaultdict(list)
    for signal_id, at in zip(hits["signal_id"], hits["utt_idx"]):
        if signal_id not in signals_at[at]:
            signals_at[at].append(signal_id)
    duration = _duration(call, metrics, turns)
    end = _strip_end(turns, duration)
    rows, cells = turn_rows(turns, end, when, cited, signals_at)
    flags = sorted(flags, key=lambda f: (SEVERITY_RANK.get(f.get("severity"), 9), f["flag_id"]))
    parts = _head(call, fingerprint) + [
        _header(call, clock(duration), audio_href), _banner(cards), _unsure(turns, cards, flags), SUMMARY,
        score_cards(cards),
        f'  <div class="flags-card">\n    <h2>Flags <small>{len(flags)} for coaching</small></h2>\n', flag_list(flags),
        STRIP_OPEN]
    parts += [STRIP_CELLS, cells, STRIP_AXIS, axis(end), STRIP_CLOSE] if cells else [NO_STRIP]
    parts += [criteria_sections(cards), METRICS_OPEN if metrics is not None else METRICS_OPEN_EMPTY,
              metric_tiles(_metrics(metrics)), _ratio((metrics or {}).get("talk_ratio")),
              f'</section>\n\n<section class="signals" id="signals">\n'
              f'  <h2>Signals found <small>{len(hits)}</small></h2>\n']
    parts += [HITS_OPEN, hit_rows(hits, when), HITS_CLOSE] if hits else [NO_HITS]
    parts += [f'</section>\n</div>\n\n<section class="transcript" id="transcript">\n  <h2>Transcript <small>'
              f'{len(turns)} utterances · evidence for a criterion is <mark>highlighted</mark></small></h2>\n',
              rows or NO_TURNS,
              f'</section>\n<footer>callintel · QA scorecard of call {_e(call.get("call_id", ""))}</footer>\n', END]
    if utf8:
        return b"".join([part if type(part) is bytes else part.encode() for part in parts])
    return "".join([part.decode() if type(part) is bytes else part for part in parts])


# The page's constant parts, as UTF-8: most of a page's bytes (its style sheet), never a str of it.
HEAD = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
).encode()
HEAD_META = (
    f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">\n<meta name="generator" content="callintel">\n'
    f'<title>Scorecard '
).encode()
HEAD_STYLE = (
    f'</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<header class="top">\n  <div class="wrap">\n    <div>\n'
    f'      <div class="brand">callintel · QA scorecard</div>\n      <h1>Call '
).encode()
SUMMARY = b'\n<div class="summary">\n'
STRIP_OPEN = (
    '  </div>\n</div>\n\n<section class="strip" id="sentiment">\n  <h2>Sentiment along the call <small>one cell per '
    'utterance · negative<span class="scale"></span>positive · click a cell to read it</small></h2>\n'
).encode()
STRIP_CELLS = (
    '  <div class="strip-wrap">\n    <div class="lanes"><span class="who agent">Agent</span><span class="who customer">'
    'Customer</span></div>\n    <svg viewBox="0 0 1000 40" preserveAspectRatio="none" role="img" aria-label="Sentiment '
    'of each utterance along the call">\n      <rect x="0" y="0" width="1000" height="40" fill="#f7f8fa"></rect>\n'
    '      <line x1="0" y1="20" x2="1000" y2="20" stroke="#dfe3e8" stroke-width="0.5"></line>\n'
).encode()
STRIP_AXIS = b'    </svg>\n  </div>\n  <div class="axis">'
STRIP_CLOSE = b'</div>\n</section>\n\n'
NO_STRIP = b'<p class="empty">No utterances.</p></section>\n\n'
METRICS_OPEN = (b'\n<div class="grid2">\n<section class="metrics" id="metrics">\n  <h2>Metrics</h2>\n'
                b'  <div class="tiles">\n')
METRICS_OPEN_EMPTY = (b'\n<div class="grid2">\n<section class="metrics" id="metrics">\n  <h2>Metrics</h2>\n'
                      b'<p class="empty">No metrics for this call.</p>  <div class="tiles">\n')
HITS_OPEN = (b'  <table>\n    <thead><tr><th>Time</th><th>Signal</th><th>Speaker</th><th>Matched words</th></tr>'
             b'</thead>\n    <tbody>\n')
HITS_CLOSE = b'    </tbody>\n  </table>\n'
NO_HITS = b'<p class="empty">No signals fired on this call.</p>'
NO_TURNS = b'  <p class="empty" style="padding: 0 18px">No speech on this call.</p>\n'
END = f'</main>\n<script>{SCRIPT}</script>\n</body>\n</html>'.encode()


def _head(call: dict, fingerprint: str | None) -> list:
    """The page up to its header's call id: its fingerprint (see scorecard.fingerprint), title and style."""
    sign = f'<meta name="callintel-page" content="{_e(fingerprint)}">\n' if fingerprint else b""
    return [HEAD, sign, HEAD_META, _e(call.get("call_id", "")), HEAD_STYLE]


def _header(call: dict, duration: str, audio_href: str | None) -> str:
    """The header's facts of the call and the player (or why there is none)."""
    asr = call.get("asr_model")
    source = "imported transcript" if asr == "transcript" else (asr or "")
    player = (f'    <audio id="player" controls preload="metadata" src="{_e(audio_href)}"></audio>\n'
              f'    <span>Click any time on this page to play the call from there.</span>\n' if audio_href else
              '    <span>No recording linked to this page: times jump to the transcript.</span>\n')
    return (f'{_e(call.get("call_id", ""))}</h1>\n    </div>\n    <dl class="facts">\n'
            f'      <div><dt>Date / time</dt><dd>{_e(_started(call))}</dd></div>\n'
            f'      <div><dt>Agent</dt><dd>{_e(call.get("agent_id") or "—")}</dd></div>\n'
            f'      <div><dt>Queue</dt><dd>{_e(call.get("queue") or "—")}</dd></div>\n'
            f'      <div><dt>Direction</dt><dd>{_e(call.get("direction") or "—")}</dd></div>\n'
            f'      <div><dt>Duration</dt><dd>{_e(duration)}</dd></div>\n'
            + (f'<div><dt>Source</dt><dd>{_e(source)}</dd></div>' if source else "")
            + f'    </dl>\n  </div>\n</header>\n<div class="player">\n  <div class="wrap">\n{player}  </div>\n</div>\n'
            f'<main>\n')


def _banner(cards: list[dict]) -> str:
    """AUTO-FAIL, with the rubrics it failed on, when a must-pass criterion failed."""
    if not any(card["auto_failed"] for card in cards):
        return ""
    failed = ", ".join(f'{_e(c["rubric_id"])} v{_e(c["rubric_version"])}' for c in cards if c["auto_failed"])
    return ('  <div class="banner autofail" role="alert" id="auto-fail">\n    <strong>AUTO-FAIL</strong>\n'
            f'    <span>A must-pass criterion failed on\n{failed}:\n    the call scores 0% whatever else was done '
            'well.</span>\n  </div>\n')


def _unsure(turns: Rows, cards: list[dict], flags: list[dict]) -> str:
    """The notice to listen before coaching on a fail heard with low confidence (page_rows.listen_first)."""
    failed = bool(flags) or any(card["counts"]["fail"] for card in cards)
    notice = listen_first(turns, failed)
    return f'  <div class="banner unsure" role="note">\n    <span>{_e(notice)}</span>\n  </div>\n' if notice else ""


def _ratio(talk_ratio: float | None) -> str:
    """The bar of the agent's share of talk time, under the metrics."""
    if talk_ratio is None:
        return "  </div>\n"
    return ('  </div>\n  <div class="ratio" title="Agent share of talk time"><span class="a" style="width: '
            f'{"%.1f" % (talk_ratio * 100)}%"></span><span class="c" style="flex: 1"></span></div>\n'
            f'  <div class="legend"><span class="who agent">Agent {"%.0f" % (talk_ratio * 100)}%</span>'
            f'<span class="who customer">Customer {"%.0f" % (100 - talk_ratio * 100)}%</span></div>\n')
