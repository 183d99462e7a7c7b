"""The HTML scorecard, rendered and opened in a real headless browser (Debian `chromium`).

Inputs are the rows the store holds for demo call c-0001 (its transcript, as redacted, with
sentiment, signal hits, two versions of the standard rubric, metrics and flags), plus one
hostile utterance: markup in transcript text must reach the page as text and never run.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from pipeline.report import SCRIPT_HASH, render_scorecard

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "data" / "demo" / "2026-11-09" / "call-0001.flac"
HOSTILE = "<script>document.title='pwned'</script><b>bold</b>"
SENTIMENT = [0.60, 0.10, -0.10, 0.30, 0.20, -0.72, -0.30, 0.00, 0.35, 0.40, 0.81, 0.55, -0.30, 0.70]
HOSTILE_IDX = len(SENTIMENT)
# utt_idx each v2 criterion cites as evidence (None: no evidence).
EVIDENCE = {"greeting": 0, "verify_identity": 4, "empathy": 6, "hold_etiquette": None,
            "resolution_confirmed": HOSTILE_IDX, "closing": 13, "no_profanity": None}


# --- the call's stored rows --------------------------------------------------------------------

def rows(auto_failed: bool = False) -> dict:
    doc = json.loads((ROOT / "data" / "demo_transcripts" / "c-0001.json").read_text())
    started = dt.datetime.fromisoformat(doc["started_at"])
    date = started.date()
    utterances = [{"call_id": "c-0001", "utt_idx": i, "confidence": None, "words": None, "call_date": date,
                   "sentiment": s, **u} for i, (u, s) in enumerate(zip(doc["utterances"], SENTIMENT))]
    utterances[8]["text"] = "Please put it on my new Visa. The number is [CARD], expiry [CARD]."   # as stored
    utterances[12]["sentiment"] = None                                                          # unscored
    utterances.append({**utterances[12], "utt_idx": HOSTILE_IDX, "start_s": 95.4, "end_s": 97.0, "text": HOSTILE,
                       "sentiment": -0.5})
    call = {"call_id": "c-0001", "source_path": "2026-11-09/call-0001.flac", "started_at": started,
            "call_date": date, "duration_s": 97.5, "channels": 2, "agent_id": "a_ruiz", "queue": "billing",
            "direction": "inbound", "asr_model": "tiny.en", "status": "ok"}
    key = {"call_id": "c-0001", "rubric_id": "standard", "call_date": date}
    cards = [{**key, "rubric_version": 2, "points": 0.0 if auto_failed else 45.0, "max_points": 55.0,  # current
              "pct": 0.0 if auto_failed else 81.8, "passed": not auto_failed, "auto_failed": auto_failed},
             {**key, "rubric_version": 1, "points": 50.0, "max_points": 70.0, "pct": 71.4, "passed": False,
              "auto_failed": False}]
    results = {"greeting": "pass", "verify_identity": "pass", "empathy": "pass", "hold_etiquette": "na",
               "resolution_confirmed": "fail", "closing": "pass", "no_profanity": "fail" if auto_failed else "pass"}
    points = {"greeting": 10, "verify_identity": 15, "empathy": 10, "hold_etiquette": 5, "resolution_confirmed": 10,
              "closing": 10, "no_profanity": 0}
    by_idx = {u["utt_idx"]: u for u in utterances}
    items = [{**key, "rubric_version": 1, "criterion_id": "legacy_check", "question": "Retired question?",
              "result": "pass", "points": 5.0, "max_points": 5.0, "evidence": None, "detail": "old"}]
    for cid, result in results.items():
        idx = EVIDENCE[cid]
        u = by_idx.get(idx)
        items.append({**key, "rubric_version": 2, "criterion_id": cid, "question": f"Question about {cid}?",
                      "result": result, "points": float(points[cid]) if result == "pass" else 0.0,
                      "max_points": 0.0 if result == "na" else float(points[cid]),
                      "evidence": None if u is None else {"utt_idx": idx, "start_s": u["start_s"], "text": u["text"]},
                      "detail": f"{cid} detail"})
    metrics = {"call_id": "c-0001", "duration_s": 97.5, "agent_talk_s": 46.2, "customer_talk_s": 33.9,
               "talk_ratio": 0.577, "silence_s": 7.8, "max_silence_s": 0.6, "overlap_s": 0.0, "interruptions": 0,
               "agent_interruptions": 0, "customer_interruptions": 0, "agent_wpm": 171.3, "customer_wpm": None,
               "turns": 13, "sentiment_start": 0.1, "sentiment_end": None, "sentiment_change": None, "call_date": date}
    hits = [{"call_id": "c-0001", "signal_id": sid, "utt_idx": i, "start_s": by_idx[i]["start_s"],
             "speaker": by_idx[i]["speaker"], "matched_text": text, "category": cat, "call_date": date}
            for sid, i, text, cat in [("agent_greeting", 0, "Thank you for calling", "greeting"),
                                      ("identity_verification", 4, "you're verified", "compliance"),
                                      ("refund_request", 5, "I want a refund", "billing"),
                                      ("dissatisfaction", HOSTILE_IDX, HOSTILE, "sentiment")]]
    flags = [{"call_id": "c-0001", "flag_id": "ended_negative", "severity": "medium",
              "reason": f"Customer still negative at the end: {HOSTILE}", "created_run": "r1", "call_date": date},
             {"call_id": "c-0001", "flag_id": "long_silence", "severity": "low", "reason": "max_silence_s 61",
              "created_run": "r1", "call_date": date},
             {"call_id": "c-0001", "flag_id": "auto_fail", "severity": "high", "reason": "no_profanity failed",
              "created_run": "r1", "call_date": date}]
    return {"call": call, "utterances": utterances, "scorecards": cards, "items": items, "metrics": metrics,
            "hits": hits, "flags": flags}


def render(auto_failed: bool = False, audio_href: str | None = None) -> str:
    r = rows(auto_failed)
    return render_scorecard(r["call"], r["utterances"], r["scorecards"], r["items"], r["metrics"], r["hits"],
                            r["flags"], audio_href=audio_href)


def test_a_page_as_bytes_is_its_text_in_utf8():
    """utf8=True (how the pipeline renders, for the file) gives the bytes of the page's text, with a fingerprint too."""
    r = rows(auto_failed=True)
    args = (r["call"], r["utterances"], r["scorecards"], r["items"], r["metrics"], r["hits"], r["flags"], "../x.flac",
            "f1ng3rpr1nt")
    assert render_scorecard(*args, True) == render_scorecard(*args).encode("utf-8")
    assert b'<meta name="callintel-page" content="f1ng3rpr1nt">' in render_scorecard(*args, True)[:512]


# --- the browser --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("the HTML scorecard tests need a real browser: `apt-get install chromium` (Debian package)")
    return path


def browse(chromium: str, page: Path, *args: str) -> str:
    """Open page in headless chromium with its own profile; what it prints (the DOM for --dump-dom)."""
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={page.parent / 'profile'}", "--autoplay-policy=no-user-gesture-required",
         "--virtual-time-budget=3000", *args, page.as_uri()],
        check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def open_page(chromium: str, tmp_path: Path, html: str, name: str = "c-0001.html") -> Node:
    page = tmp_path / name
    page.write_text(html, encoding="utf-8")
    return parse(browse(chromium, page, "--dump-dom"))


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        return [n for n in self.iter() if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
                and all(n.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'}> with class={cls} {attrs}"
        return found[0]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.node)
        self.node.children.append(node)
        if tag not in VOID:
            self.node = node

    def handle_startendtag(self, tag, attrs):
        self.node.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.node))

    def handle_endtag(self, tag):
        node = self.node
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


# --- tests --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dom(chromium, tmp_path_factory) -> Node:
    return open_page(chromium, tmp_path_factory.mktemp("report"), render())


def test_the_page_renders_and_its_own_script_runs(dom):
    assert dom.find("title").text() == "Scorecard c-0001"
    assert dom.find("html").attrs.get("data-js") == "ready"      # the one script the CSP allows did run
    assert len(dom.find_all("script")) == 1
    assert not dom.find_all("link") and not dom.find_all("img")  # self-contained
    header = dom.find("dl", "facts").text()
    for fact in ("2026-11-09 09:14", "a_ruiz", "billing", "inbound", "1:37"):
        assert fact in header


def test_criteria_of_the_newest_rubric_version_with_results_and_points(dom):
    rows_ = dom.find_all("tr", "crit")
    assert [r.attrs["data-criterion"] for r in rows_] == list(EVIDENCE)   # v2 only, in rubric order
    badges = {r.attrs["data-criterion"]: r.find("span", "badge").text() for r in rows_}
    assert badges == {"greeting": "Pass", "verify_identity": "Pass", "empathy": "Pass", "hold_etiquette": "N/A",
                      "resolution_confirmed": "Fail", "closing": "Pass", "no_profanity": "Pass"}
    points = {r.attrs["data-criterion"]: r.find("td", "num").text() for r in rows_}
    assert points["verify_identity"] == "15 / 15" and points["resolution_confirmed"] == "0 / 10"
    assert points["hold_etiquette"] == "—"
    assert "Question about greeting?" in rows_[0].text()
    assert "legacy_check" not in dom.text() and "Retired question?" not in dom.text()
    card = dom.find(cls="score-card")
    assert card.find(cls="pct").text() == "81.8%" and card.find("span", "verdict").text() == "PASS"
    assert "45 / 55 points" in card.text()
    assert "v1 71%" in card.find(cls="older").text()


def test_evidence_utterances_are_highlighted_and_the_others_are_not(dom):
    cited = {i for i in EVIDENCE.values() if i is not None}
    utts = dom.find_all("div", "utt")
    assert [u.attrs["id"] for u in utts] == [f"u{i}" for i in range(HOSTILE_IDX + 1)]
    for u in utts:
        idx = int(u.attrs["id"][1:])
        assert ("evidence" in u.classes) == (idx in cited), u.attrs["id"]
        assert bool(u.find_all("mark")) == (idx in cited), u.attrs["id"]
    assert "Pass · verify_identity" in dom.find(id="u4").text()   # which criterion it is evidence for


def test_transcript_text_is_escaped_and_never_runs(dom):
    assert dom.find("title").text() == "Scorecard c-0001"             # the injected script did not run
    assert dom.find(id=f"u{HOSTILE_IDX}").find(cls="text").text() == HOSTILE   # shown as literal text
    assert not [b for b in dom.find_all("b") if b.text() == "bold"]   # no element made from it
    assert all("pwned" not in s.text() for s in dom.find_all("script"))
    assert dom.find("tr", "crit", data_criterion="resolution_confirmed").find(cls="evidence-text").text() == HOSTILE
    assert dom.find("tr", "hit", data_signal="dissatisfaction").find("td", "matched").text() == f"“{HOSTILE}”"
    assert HOSTILE in dom.find("ul", "flags").text()


def test_time_links_carry_the_seconds_and_target_the_utterance(dom):
    r = rows()
    starts = {u["utt_idx"]: u["start_s"] for u in r["utterances"]}
    for u in dom.find_all("div", "utt"):
        link = u.find("a", "t")
        idx = int(u.attrs["id"][1:])
        assert link.attrs["href"] == f"#u{idx}"
        assert float(link.attrs["data-t"]) == pytest.approx(starts[idx], abs=0.005)
    assert dom.find(id="u4").find("a", "t").text() == "0:33"
    evidence = {cid: row.find_all("a", "t") for cid in EVIDENCE
                for row in [dom.find("tr", "crit", data_criterion=cid)]}
    for cid, idx in EVIDENCE.items():
        if idx is None:
            assert evidence[cid] == []
        else:
            [link] = evidence[cid]
            assert link.attrs["href"] == f"#u{idx}"
            assert float(link.attrs["data-t"]) == pytest.approx(starts[idx], abs=0.005)
    ids = {n.attrs["id"] for n in dom.iter() if "id" in n.attrs}
    assert all(a.attrs["href"][1:] in ids for a in dom.find_all("a") if a.attrs.get("href", "").startswith("#"))
    assert not dom.find_all("audio")                                  # no recording: times only scroll


def test_metrics_flags_signals_and_the_sentiment_strip(dom):
    tiles = {t.find(cls="k").text(): t.find(cls="v").text() for t in dom.find_all(cls="tile")}
    assert tiles["Talk ratio"] == "58%" and tiles["Agent talk"] == "0:46" and tiles["Longest silence"] == "0.6 s"
    assert tiles["Words per minute"] == "171 / —"                     # customer_wpm unknown
    assert tiles["Customer sentiment"] == "+0.10 → —"
    assert [f.find(cls="sev").text() for f in dom.find_all("li", "flag")] == ["high", "medium", "low"]
    assert [h.attrs["data-signal"] for h in dom.find_all("tr", "hit")] == [
        "agent_greeting", "identity_verification", "refund_request", "dissatisfaction"]
    cells = {int(c.attrs["data-utt"]): c.attrs["fill"] for c in dom.find_all("rect", "cell")}
    assert sorted(cells) == list(range(HOSTILE_IDX + 1))              # one cell per utterance

    def rgb(fill):
        return tuple(int(fill[i:i + 2], 16) for i in (1, 3, 5))

    red, green = rgb(cells[5]), rgb(cells[10])                        # -0.72 and +0.81
    assert red[0] > red[1] + 60 and green[1] > green[0] + 60
    assert cells[12] == "#e3e6ea"                                     # not scored


def test_auto_fail_banner_appears_only_when_auto_failed(chromium, dom, tmp_path):
    assert not dom.find_all(id="auto-fail")
    failed = open_page(chromium, tmp_path, render(auto_failed=True))
    assert "AUTO-FAIL" in failed.find(id="auto-fail").text()
    assert failed.find(cls="score-card").find("span", "verdict").text() == "AUTO-FAIL"
    assert failed.find(cls="score-card").find(cls="pct").text() == "0%"
    assert failed.find("tr", "crit", data_criterion="no_profanity").find("span", "badge").text() == "Fail"


def with_probe(html: str, probe: str) -> str:
    """The page with a probe script of the test's beside its own: the page's CSP widened by the probe's hash."""
    digest = "sha256-" + base64.b64encode(hashlib.sha256(probe.encode()).digest()).decode()
    policy = str(escape(f"script-src '{SCRIPT_HASH}'"))                # as written in the meta tag
    assert policy in html
    html = html.replace(policy, str(escape(f"script-src '{SCRIPT_HASH}' '{digest}'")))
    return html.replace("</body>", f"<script>{probe}</script></body>")


def test_on_a_narrow_screen_and_on_paper_the_transcript_keeps_its_width(chromium, tmp_path):
    """At 820 px and less (a tablet, a printed A4 page) the transcript's text used to be squeezed into the
    12 px sentiment-dot column, a letter a line: an 11-page PDF for a 55 s call."""
    probe = """
var text = document.querySelector(".utt .text").getBoundingClientRect();
var row = document.querySelector(".utt").getBoundingClientRect();
document.body.setAttribute("data-widths", text.width + " " + row.width);
"""
    page = tmp_path / "c-0001.html"
    page.write_text(with_probe(render(), probe), encoding="utf-8")
    for width in (760, 1280):
        dom = parse(browse(chromium, page, "--dump-dom", f"--window-size={width},2000"))
        text, row = map(float, dom.find("body").attrs["data-widths"].split())
        assert text > 0.6 * row, (width, text, row)  # the text takes most of its row, beside time and dot


def test_a_very_long_criterion_id_wraps_and_leaves_every_result_on_screen(chromium, tmp_path):
    """A 240-character id with no break pushed the Result, Points and Evidence columns of every criterion off the
    page, behind a horizontal scrollbar."""
    r = rows()
    long_id = "agent_confirmed_the_customer_was_happy_with_the_outcome_" * 4 + "x" * 16
    assert len(long_id) == 240
    r["items"] = [{**i, "criterion_id": long_id} if i["criterion_id"] == "empathy" else i for i in r["items"]]
    html = render_scorecard(r["call"], r["utterances"], r["scorecards"], r["items"], r["metrics"], r["hits"],
                            r["flags"])
    assert long_id in html
    probe = """
var last = Array.from(document.querySelectorAll("tr.crit td")).map(function (td) {
  return td.getBoundingClientRect().right; });
document.body.setAttribute("data-fit", Math.max.apply(null, last) + " " + document.documentElement.scrollWidth +
                           " " + window.innerWidth);
"""
    page = tmp_path / "c-0001.html"
    page.write_text(with_probe(html, probe), encoding="utf-8")
    dom = parse(browse(chromium, page, "--dump-dom", "--window-size=1280,2000"))
    right, scroll, inner = map(float, dom.find("body").attrs["data-fit"].split())
    assert right <= inner and scroll <= inner, (right, scroll, inner)


def test_a_time_link_seeks_the_recording_and_scrolls_to_the_utterance(chromium, tmp_path):
    html = render(audio_href=RECORDING.as_uri())
    # A probe script clicks the first evidence time once the recording is loaded and notes what happened.
    # It runs beside the page's own script, so the page's CSP is widened by the probe's hash only.
    probe = """
document.getElementById("player").addEventListener("loadedmetadata", function () {
  document.querySelector("tr.crit[data-criterion=verify_identity] a.t").click();
  var p = document.getElementById("player");
  document.body.setAttribute("data-seeked", String(p.currentTime));
  document.body.setAttribute("data-hash", location.hash);
});
"""
    dom = open_page(chromium, tmp_path, with_probe(html, probe))
    assert dom.find("audio", id="player").attrs["src"] == RECORDING.as_uri()
    body = dom.find("body")
    assert float(body.attrs["data-seeked"]) == pytest.approx(33.58, abs=0.01)
    assert body.attrs["data-hash"] == "#u4"


def test_screenshot_is_a_rendered_page(chromium, tmp_path):
    page = tmp_path / "c-0001.html"
    page.write_text(render(auto_failed=True), encoding="utf-8")
    shot = tmp_path / "scorecard.png"
    browse(chromium, page, f"--screenshot={shot}", "--window-size=1280,2400")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 2400)
    assert len(png) > 60_000          # a blank or unstyled page compresses to far less


# Closes an attribute and opens an element: escaped, it is only text; missed anywhere, the page grows an element.
BREAKOUT = '" onclick="x" data-broken="1"><i id="injected">x</i>\'<'


def test_every_value_a_row_takes_from_the_data_stays_text(chromium, tmp_path):
    """page_rows writes the repeated rows by hand, not through Jinja's autoescape: every data value it places
    (ids, labels, speakers, categories, questions, details, quotes) must still reach the page as text."""
    r = rows()
    for u in r["utterances"][:3]:
        u.update(speaker=BREAKOUT, text=BREAKOUT)
    r["hits"][0].update(signal_id=BREAKOUT, category=BREAKOUT, speaker=BREAKOUT, matched_text=BREAKOUT)
    item = next(i for i in r["items"] if i["criterion_id"] == "greeting")
    item.update(criterion_id=BREAKOUT, result=BREAKOUT, question=BREAKOUT, detail=BREAKOUT,
                evidence={**item["evidence"], "text": BREAKOUT})
    dom = open_page(chromium, tmp_path, render_scorecard(r["call"], r["utterances"], r["scorecards"], r["items"],
                                                         r["metrics"], r["hits"], r["flags"]))
    assert not dom.find_all(id="injected") and not dom.find_all("i")
    assert not [n for n in dom.iter() if "onclick" in n.attrs or "data-broken" in n.attrs]
    assert dom.find("tr", "hit", data_signal=BREAKOUT).find("td", "matched").text() == f"“{BREAKOUT}”"
    row = dom.find("tr", "crit", data_criterion=BREAKOUT)
    assert row.attrs["class"] == f"crit result-{BREAKOUT}" and row.find("span").attrs["class"] == f"badge {BREAKOUT}"
    assert row.find(cls="q").text() == BREAKOUT and row.find(cls="d").text() == f"{BREAKOUT} · {BREAKOUT}"
    assert row.find(cls="evidence-text").text() == BREAKOUT
    turns = [dom.find(id=f"u{i}") for i in range(3)]
    assert [t.attrs["class"] for t in turns] == [f"utt {BREAKOUT} evidence", f"utt {BREAKOUT}", f"utt {BREAKOUT}"]
    assert [t.find(cls="text").text() for t in turns] == [BREAKOUT] * 3
    # the criterion it is evidence for, and the signal that fired on it
    assert [c.text() for c in turns[0].find(cls="chips").find_all("span")] == [f"{BREAKOUT} · {BREAKOUT}", BREAKOUT]
    assert dom.find("rect", "cell", data_utt="0").find("title").text().endswith(f"{BREAKOUT}: sentiment +0.60")


def test_every_value_the_summary_takes_from_the_data_stays_text(chromium, tmp_path):
    """The score cards, criteria headings and flags are written by page_rows too: their ids and words stay text."""
    r = rows(auto_failed=True)
    for row in r["scorecards"] + r["items"]:
        row["rubric_id"] = BREAKOUT
    r["flags"][0].update(flag_id=BREAKOUT, severity=BREAKOUT, reason=BREAKOUT)
    dom = open_page(chromium, tmp_path, render_scorecard(r["call"], r["utterances"], r["scorecards"], r["items"],
                                                         r["metrics"], r["hits"], r["flags"]))
    assert not dom.find_all(id="injected") and not dom.find_all("i")
    assert not [n for n in dom.iter() if "onclick" in n.attrs or "data-broken" in n.attrs]
    card = dom.find(cls="score-card")
    assert card.attrs["id"] == f"score-{BREAKOUT}" and card.find("small").text() == f"{BREAKOUT} · version 2"
    assert {a.attrs["href"] for a in card.find(cls="missed").find_all("a")} == {f"#criteria-{BREAKOUT}"}
    assert dom.find("section", "criteria").attrs["id"] == f"criteria-{BREAKOUT}"
    flag = next(f for f in dom.find_all("li", "flag") if f.find(cls="flag-id").text() == BREAKOUT)
    assert flag.find("span").attrs["class"] == f"sev {BREAKOUT}" and flag.find("span").text() == BREAKOUT
    assert flag.text() == f"{BREAKOUT}{BREAKOUT} — {BREAKOUT}"


def test_an_utterance_index_that_is_not_an_integer_is_refused_not_written():
    """Indexes go into ids and links unescaped because they are integers; anything else stops the page."""
    r = rows()
    r["hits"][0]["utt_idx"] = '0"><i id="injected">'
    with pytest.raises(TypeError, match="utterance index"):
        render_scorecard(r["call"], r["utterances"], r["scorecards"], r["items"], r["metrics"], r["hits"], r["flags"])


def test_a_mono_calls_talk_times_are_unknown_and_its_sentiment_is_every_turns():
    """On a mono call (every turn `unknown`) the text scorecard said `agent 0:00, customer 0:00` and gave the
    agent's greeting as the customer's sentiment; the page too called it the customer's."""
    from pipeline.metrics import metrics_of
    from pipeline.scorecard import text

    r = rows()
    mono = metrics_of([{**u, "speaker": "unknown"} for u in r["utterances"]])
    assert mono["agent_talk_s"] is None and mono["sentiment_start"] is not None
    said = text({"call": r["call"], "scorecards": [], "items": [], "flags": [], "metrics": mono}).splitlines()
    assert said[2].startswith("Talk: agent —, customer —, agent share —;")
    assert said[3].startswith("Sentiment (every turn: mono call): ")
    page = parse(render_scorecard(r["call"], r["utterances"], [], [], mono, [], []))
    tiles = {t.find(cls="k").text(): t.find(cls="v").text() for t in page.find_all(cls="tile")}
    assert "Sentiment (every turn: mono call)" in tiles and "Customer sentiment" not in tiles
    stereo = text({"call": r["call"], "scorecards": [], "items": [], "flags": [], "metrics": r["metrics"]})
    assert "Talk: agent 0:46, customer 0:33," in stereo and "\nCustomer sentiment: +0.10 at the start" in stereo


def test_a_fail_heard_with_low_confidence_says_to_listen_first(chromium, dom, tmp_path):
    """c-0004's verification question was heard as "And your date?" (confidence 0.63) and the call flagged high
    for unverified account business; the page gave no hint that the fail might be the ASR's. A transcript (no
    confidence) and a call with nothing failed say nothing."""
    assert not dom.find_all(cls="unsure")  # c-0001's rows are a transcript's: no confidence
    r = rows()
    agent = [u for u in r["utterances"] if u["speaker"] == "agent"]
    for u in agent:
        u["confidence"] = 0.9
    agent[1].update(confidence=0.63, text="And your date?")
    page = open_page(chromium, tmp_path, render_scorecard(r["call"], r["utterances"], r["scorecards"], r["items"],
                                                          r["metrics"], r["hits"], r["flags"]))
    said = page.find(cls="unsure").text().strip()
    assert said.startswith(f"Listen before coaching on a fail: 1 of the agent's {len(agent)} turns were heard")
    at = int(agent[1]["start_s"])
    assert f'{at // 60}:{at % 60:02d} "And your date?" (0.63)' in said
    from pipeline.scorecard import text

    printed = text({"call": r["call"], "utterances": r["utterances"], "scorecards": r["scorecards"],
                    "items": r["items"], "flags": r["flags"], "metrics": r["metrics"]})
    assert said in printed.splitlines()  # the terminal's scorecard says it too
    passed = [{**i, "result": "pass"} if i["result"] == "fail" else i for i in r["items"]]
    calm = open_page(chromium, tmp_path, render_scorecard(r["call"], r["utterances"], r["scorecards"], passed,
                                                          r["metrics"], r["hits"], []), "calm.html")
    assert not calm.find_all(cls="unsure")
