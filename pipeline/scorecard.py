"""One call's scorecard, gathered from the stored tables: as text for the terminal, as an HTML page.

The same bundle feeds both, so `callintel scorecard` and the HTML file never disagree.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import marshal
import os
import pickle
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.call_rows import ROWS, Rows, by_call, cut, plain
from pipeline.flags import SEVERITY_RANK
from pipeline.page_rows import listen_first, sentiment_label
from pipeline.progress import tracked
from pipeline.report import cards_in_order
from pipeline.score import clock
from pipeline.store import day_groups

PAGE_TABLES = ("calls", "utterances", "call_metrics", "signal_hits", "scorecards", "scorecard_items", "flags")
MARK = {"pass": "✓", "fail": "✗", "na": "–"}
# What a scorecard reads of the tables with many rows a call; `calls`, `call_metrics` and `scorecards` are taken
# whole. Turning the rest (words, dates) into Python objects was a quarter of the cost of a page.
PAGE_COLUMNS = {
    "utterances": ["call_id", "utt_idx", "speaker", "start_s", "end_s", "text", "sentiment", "confidence"],
    "signal_hits": ["call_id", "signal_id", "utt_idx", "start_s", "speaker", "matched_text", "category"],
    "scorecard_items": ["call_id", "rubric_id", "rubric_version", "criterion_id", "question", "result", "points",
                        "max_points", "evidence", "detail"],
    "flags": ["call_id", "flag_id", "severity", "reason"],
}
PAGES_PER_READ = 5000  # calls whose page rows are read from the store together
PAGES_PER_WORKER_GROUP = 1000  # calls whose pages a worker renders in one go (whole days)
UNCHANGED = "unchanged"  # in place of a stored call's page: the one on disk is current, so not rendered again
FINGERPRINT_WITHIN = 512  # bytes at the start of a page that hold its fingerprint (a <meta> after the charset)


def current_rubrics(store) -> set[tuple[str, int]] | None:
    """(rubric_id, rubric_version) of the rubrics configured now, from the `rubrics` table; None in a store
    that has not recorded them (an older release's), where the newest version of each is taken as current."""
    rubrics = store.read("rubrics", ["rubric_id", "rubric_version", "current"]).to_pylist()
    return {(r["rubric_id"], r["rubric_version"]) for r in rubrics if r["current"]} if rubrics else None


def bundles(tables: dict[str, pa.Table], current: set[tuple[str, int]] | None = None) -> Iterator[dict]:
    """Per call: its row of `calls` and its rows of every other page table, in time order; those of the tables
    with many rows a call (ROWS) as call_rows.Rows, the others as dicts. `current`: see current_rubrics()."""
    cut_up = {name: by_call(table.select(PAGE_COLUMNS.get(name, table.column_names)))
              for name, table in tables.items()}
    dicts = {name: (list(Rows(columns)), spans) for name, (columns, spans) in cut_up.items() if name not in ROWS}

    def rows(name: str, call_id: str) -> list[dict]:
        every, spans = dicts[name]
        start, stop = spans.get(call_id, (0, 0))
        return every[start:stop]

    for call_id in sorted(dicts["calls"][1]):
        (utterances, hits, items) = (cut(*cut_up[name], call_id) for name in ROWS)
        yield {
            "call": rows("calls", call_id)[0],
            "utterances": utterances.sorted(utterances["utt_idx"]),
            "metrics": (rows("call_metrics", call_id) or [None])[0],
            "hits": hits.sorted(list(zip(hits["start_s"], hits["signal_id"]))),
            "scorecards": cards_in_order(rows("scorecards", call_id), current),
            "items": items,
            "flags": sorted(rows("flags", call_id), key=lambda f: (SEVERITY_RANK.get(f["severity"], 9), f["flag_id"])),
        }


def _call_groups(calls: dict, per_group: int) -> Iterator[dict]:
    """calls (call_id -> call_date) in groups of whole days (store.day_groups), oldest first."""
    by_day: dict = defaultdict(dict)
    for call_id, day in calls.items():
        by_day[day][call_id] = day
    for days in day_groups({day: len(ids) for day, ids in by_day.items()}, per_group):
        yield {call_id: when for day in sorted(days) for call_id, when in by_day[day].items()}


def stored_bundles(store, calls: dict, per_read: int = PAGES_PER_READ) -> Iterator[dict]:
    """bundles() of these stored calls (call_id -> call_date), read a few days at a time: after a rubric change
    that is every call in the archive, far more rows than memory holds at once."""
    current = current_rubrics(store)
    for group in _call_groups(calls, per_read):
        yield from bundles(store.read_calls(PAGE_TABLES, group), current)


def rendered(store, input_dir: Path, calls: dict, per_read: int = PAGES_PER_READ,
             skip_current: bool = False) -> Iterator[tuple]:
    """(call, UTF-8 page, None) for each stored call, or (call, None, why) when its page cannot be rendered.

    skip_current: (call, UNCHANGED, None), not rendered, when the page on disk is current (see _current).
    """
    for bundle, href, sign, current in _signed(store, input_dir, calls, per_read, skip_current):
        yield (bundle["call"], UNCHANGED, None) if current else _render_one(bundle, href, sign)


def _signed(store, input_dir: Path, calls: dict, per_read: int, skip_current: bool) -> Iterator[tuple]:
    """(bundle, its recording's link, its fingerprint, whether the page on disk is current) of each stored call;
    the page on disk is looked at only when skip_current."""
    for bundle in stored_bundles(store, calls, per_read):
        path = store.page_path(bundle["call"])
        href = audio_href(bundle["call"], input_dir, path)
        sign = fingerprint(bundle, href)
        yield bundle, href, sign, skip_current and _current(path, sign)


def _render_one(bundle: dict, href: str | None, sign: str | None = None) -> tuple:
    try:
        return bundle["call"], page(bundle, href, sign, True), None
    except Exception as exc:  # noqa: BLE001 - the call's data is stored; a page bug must not stop the night
        return bundle["call"], None, _why(exc)


def _render_bundles(bundles: list[tuple[dict, str | None, str]]) -> list[tuple]:
    """_render_one of each (bundle, href, fingerprint): on a Dask worker, which is sent the fingerprint too."""
    return [_render_one(bundle, href, sign) for bundle, href, sign in bundles]


def _current(path: Path, sign: str) -> bool:
    """Whether the page at path was rendered from what `sign` is the fingerprint of (see fingerprint()).

    After a change of signals or flag rules every stored call is re-scored, but most calls' rows come out the
    same: their pages are neither rendered nor written again. So a page's modification time says when it last
    changed (a copy to a web server takes only those), and the night renders and creates only what it must.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(FINGERPRINT_WITHIN)
    except OSError:
        return False
    return f'<meta name="callintel-page" content="{sign}">'.encode() in head


def fingerprint(bundle: dict, href: str | None) -> str:
    """What a page is rendered from: its rows, its recording's link and the code that renders it. Not the run
    that stored the call, which the page does not show: the same call stored by two runs has the same page.

    The rows go in as marshal's version 2 (dates as ISO text, call_rows.Rows as their columns): the bytes of the
    values alone, whatever objects hold them (later versions, like pickle, note an object seen twice), at a
    fraction of pickle's cost; rows marshal does not write (given by hand) go in as pickle. SHA-256 (cut to 128
    bits) is twice as fast as BLAKE2b on a CPU with SHA instructions.
    """
    rows = {name: plain(value) for name, value in bundle.items()}
    rows["call"].pop("run_id", None)
    try:
        written = b"m" + marshal.dumps((rows, href), 2)
    except ValueError:
        written = b"p" + pickle.dumps(({**bundle, "call": rows["call"]}, href), protocol=5)
    return hashlib.sha256(page_code().encode() + written).hexdigest()[:32]


@functools.lru_cache(maxsize=1)
def page_code() -> str:
    """The page's template and the modules that turn rows into it: a release that changes them renders again."""
    here = Path(__file__).parent
    code = hashlib.sha256()
    for name in ("templates/scorecard.css", "report.py", "page_rows.py"):
        code.update((here / name).read_bytes())
    return code.hexdigest()


def rendered_on_cluster(client, store, input_dir: Path, calls: dict) -> Iterator[tuple]:
    """rendered(), on the workers of a Dask cluster (a distributed.Client), in order, for this process to write.

    The rows go to the workers with the link to each call's recording, so a worker needs no access to the store.
    """
    from pipeline.parallel import CLUSTER_IN_FLIGHT, in_order

    current: list[dict] = []  # calls whose page on disk is current: not sent

    def to_render():
        for bundle, href, sign, is_current in _signed(store, input_dir, calls, PAGES_PER_READ, True):
            if is_current:
                current.append(bundle["call"])
            else:
                yield bundle, href, sign

    def groups():
        found = to_render()
        while group := list(itertools.islice(found, PAGES_PER_WORKER_GROUP)):
            yield (group,)

    def unchanged():
        while current:
            yield current.pop(), UNCHANGED, None

    submit = functools.partial(client.submit, _render_bundles, pure=False)
    for pages in in_order(submit, groups(), CLUSTER_IN_FLIGHT):
        yield from pages
        yield from unchanged()
    yield from unchanged()  # those found after the last group was sent


def rendered_in_pool(workers: int, out: Path, input_dir: Path, calls: dict) -> Iterator[tuple]:
    """rendered(), a few days at a time in each of `workers` processes, in order, for the committing process
    to put in place: each page is staged by its worker, and comes as its staged file (Store.write_pages).
    After a rubric change that is a page for every call in the archive: about 1 ms each in one process."""
    from pipeline.parallel import in_order, process_pool

    with process_pool(workers) as pool:
        groups = ((out, input_dir, group) for group in _call_groups(calls, PAGES_PER_WORKER_GROUP))
        for pages in in_order(functools.partial(pool.submit, _render_group), groups, 2 * workers):
            yield from pages


@dataclass
class Written:
    """What write_stored did: pages written, pages left alone because the one on disk is current (not even
    rendered), and (call, why) of each page not written."""
    written: int = 0
    unchanged: int = 0
    failed: list[tuple[dict, str]] = field(default_factory=list)


def write_stored(store, calls: dict, input_dir: Path, workers: int, progress: bool | None,
                 cluster=None) -> Written:
    """Render the pages of these stored calls (call_id -> call_date) and write those that changed.

    After a rule change that is every call in the archive: then they are rendered in `workers` processes, or
    on the workers of a Dask cluster (cluster: its distributed.Client).
    """
    if not calls:
        return Written()
    if cluster is not None:
        return _write(store, rendered_on_cluster(cluster, store, input_dir, calls), len(calls), progress)
    workers = min(workers, len(calls) // PAGES_PER_WORKER_GROUP)
    if workers < 2:
        return _write(store, rendered(store, input_dir, calls, skip_current=True), len(calls), progress)
    try:
        return _write(store, rendered_in_pool(workers, store.out, input_dir, calls), len(calls), progress)
    finally:
        store.remove_staged_pages()


def _write(store, results: Iterator[tuple], total: int, progress: bool | None) -> Written:
    done = Written()
    written: dict[str, dict] = {}

    def pages():
        for call, page, why in tracked(results, total, "page", "scorecard pages", progress):
            if page is None:
                done.failed.append((call, why))
                continue
            if page == UNCHANGED:
                done.unchanged += 1
                continue
            written[call["call_id"]] = call
            yield call, page  # its bytes, or the file a worker staged it in

    not_written = store.write_pages(pages())
    done.failed += [(written[call_id], _why(exc)) for call_id, exc in not_written.items()]
    done.written = len(written) - len(not_written)
    return done


def _render_group(out: Path, input_dir: Path, calls: dict) -> list[tuple]:
    """rendered() in a pool worker, each page staged here (so its bytes never cross to the writing process)."""
    from pipeline.store import Store
    from pipeline.store_pages import stage_pages

    store = Store(out)
    results = list(rendered(store, input_dir, calls, len(calls), skip_current=True))
    staged, failed = stage_pages(store.incoming_pages,
                                 ((call["call_id"], html) for call, html, _ in results if isinstance(html, bytes)))
    return [(call, staged.get(call["call_id"]), _why(failed.get(call["call_id"]))) if isinstance(html, bytes) else
            (call, html, why) for call, html, why in results]


def _why(exc: Exception | None) -> str | None:
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def audio_href(call: dict, input_dir: Path, page: Path) -> str | None:
    """The recording (its redacted copy when there is one), relative to the page so folders can move together."""
    if call.get("asr_model") == "transcript" or not call.get("source_path"):
        return None
    redacted = page.parents[2] / "redacted_audio" / page.parent.name / f"{call['call_id']}.flac"
    recording = redacted if redacted.exists() else Path(input_dir) / call["source_path"]
    if not recording.exists():
        return None
    return urllib.parse.quote(Path(os.path.relpath(recording, page.parent)).as_posix())


def render(bundle: dict, input_dir: Path, page_file: Path) -> str:
    return page(bundle, audio_href(bundle["call"], input_dir, page_file))


def page(bundle: dict, href: str | None, sign: str | None = None, utf8: bool = False) -> str | bytes:
    """The HTML scorecard of a bundle whose recording (if any) is at href, relative to the page (sign: its
    fingerprint(), when the caller has it already; utf8: as the bytes its file holds, not str)."""
    from pipeline.report import render_scorecard

    return render_scorecard(bundle["call"], bundle["utterances"], bundle["scorecards"], bundle["items"],
                            bundle["metrics"], bundle["hits"], bundle["flags"], href,
                            sign or fingerprint(bundle, href), utf8)


def ready_pages(tables: dict[str, pa.Table]) -> dict[str, bytes]:
    """call_id -> HTML scorecard (UTF-8) of each imported transcript of a prepared batch (its rows per table).

    Rendered where the batch is prepared, so on every core, and written once the calls are stored. A
    transcript has no recording to link, so its page depends on its rows alone; a recording's page links
    the redacted copy written when the call is stored, and is rendered from the store after that. Bytes, not
    str: a page holds a few non-Latin-1 marks ("—", "✓"), so as str it takes twice the memory while it waits
    for its commit, and crossing from a worker it would be encoded and decoded again.
    """
    tables = {name: tables[name] for name in PAGE_TABLES}
    calls = tables["calls"]
    if not len(calls):
        return {}
    ids = pc.filter(calls.column("call_id"), pc.equal(calls.column("asr_model"), "transcript"))
    if len(ids) < len(calls):
        tables = {name: t.filter(pc.is_in(t.column("call_id"), value_set=ids)) for name, t in tables.items()}
    pages = {}
    for bundle in bundles(tables):
        try:  # a transcript: no recording to link
            pages[bundle["call"]["call_id"]] = page(bundle, None, None, True)
        except Exception:  # noqa: BLE001 - left out: the flow renders it again from the store and reports why
            continue
    return pages


def text(bundle: dict) -> str:
    """The scorecard as a QA manager reads it in a terminal."""
    call, lines = bundle["call"], []
    started = call["started_at"].strftime("%Y-%m-%d %H:%M") if call.get("started_at") else str(call["call_date"])
    lines.append(f"Call {call['call_id']}  {started}  agent {call.get('agent_id') or '?'}  "
                 f"queue {call.get('queue') or '?'}  {call.get('direction') or ''}  "
                 f"{clock(call.get('duration_s') or 0)}")
    shown = {}
    for card in bundle["scorecards"]:
        shown.setdefault(card["rubric_id"], card)
    if not shown:
        lines.append("Not scored (no speech, or no rubric applies to this call).")
    for card in shown.values():
        lines += _card_lines(card, bundle["items"])
    # the cards shown, as the page judges it: a fail of a rubric version no longer configured does not count
    current = {(card["rubric_id"], card["rubric_version"]) for card in shown.values()}
    failed = bool(bundle["flags"]) or any(item["result"] == "fail" and (item["rubric_id"], item["rubric_version"])
                                          in current for item in bundle["items"])
    if notice := listen_first(bundle.get("utterances") or [], failed):
        lines.append(notice)
    lines += _metric_lines(bundle["metrics"])
    for flag in bundle["flags"]:
        lines.append(f"Flag [{flag['severity']}] {flag['flag_id']}: {flag['reason']}")
    return "\n".join(lines)


def _card_lines(card: dict, items: list[dict]) -> list[str]:
    verdict = ("AUTO-FAIL" if card["auto_failed"] else "NO VERDICT (every criterion n.a.)" if card["passed"] is None
               else "PASS" if card["passed"] else "FAIL")
    pct = "n.a." if card["pct"] is None else f"{card['pct']:g}%"
    out = [f"{card['rubric_id']} v{card['rubric_version']}: {pct}  {verdict}  "
           f"({card['points']:g} of {card['max_points']:g} points)"]
    mine = [i for i in items if i["rubric_id"] == card["rubric_id"] and i["rubric_version"] == card["rubric_version"]]
    width = max((len(i["criterion_id"]) for i in mine), default=0)
    for item in mine:
        points = "n.a." if item["result"] == "na" else f"{item['points']:g}/{item['max_points']:g}"
        evidence = item.get("evidence")
        quote = f'  "{evidence["text"]}" @{clock(evidence["start_s"])}' if evidence and evidence.get("text") else ""
        out.append(f"  {MARK[item['result']]} {item['criterion_id']:<{width}}  {points:>6}  {item['detail']}{quote}")
    return out


def _metric_lines(m: dict | None) -> list[str]:
    if not m:
        return []

    def num(key, fmt="{:g}"):
        return "—" if m.get(key) is None else fmt.format(m[key])

    def talk(key):  # null on a mono call: whose talk is whose cannot be told, not 0:00
        return "—" if m.get(key) is None else clock(m[key])

    return [
        f"Talk: agent {talk('agent_talk_s')}, customer {talk('customer_talk_s')}, "
        f"agent share {num('talk_ratio', '{:.0%}')}; silence {num('silence_s')} s (longest {num('max_silence_s')} s); "
        f"overlap {num('overlap_s')} s; interruptions by agent {num('agent_interruptions')}, "
        f"by customer {num('customer_interruptions')}; wpm agent {num('agent_wpm')}, customer {num('customer_wpm')}",
        f"{sentiment_label(m)}: {num('sentiment_start', '{:+.2f}')} at the start -> {num('sentiment_end', '{:+.2f}')} "
        f"at the end ({num('sentiment_change', '{:+.2f}')})",
    ]
