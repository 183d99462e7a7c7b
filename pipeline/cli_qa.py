"""`callintel scorecard` and `callintel flagged`: what QA managers and coaches read. Read-only on DuckDB."""
from __future__ import annotations

import click

from pipeline.cli_common import (UsageProblem, config_option, format_option, load_cli_config, out_option, print_frame,
                                 query, writing)
from pipeline.scorecard import PAGE_TABLES, bundles, current_rubrics, render, text
from pipeline.store import Store, StoreError

SEVERITIES = ["high", "medium", "low"]
FLAGGED_COLUMNS = "call_date, call_id, agent_id, queue, severity, score_pct, auto_failed, flags, reasons"
# an export plans the listening: when each call was, how long it takes to hear, and which way it went
EXPORTED_COLUMNS = ("call_date, started_at, call_id, agent_id, queue, direction, duration_s, severity, n_flags, "
                    "score_pct, auto_failed, flags, reasons")


def _bundle(cfg, call_id: str) -> dict:
    try:
        with Store(cfg.out).connect_read_only() as con:
            tables = {name: con.sql(f"SELECT * FROM {name} WHERE call_id = $id",
                                    params={"id": call_id}).to_arrow_table() for name in PAGE_TABLES}
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    found = next(bundles(tables, current_rubrics(Store(cfg.out))), None)
    if found is None:
        raise UsageProblem(f"no call {call_id!r} in {cfg.out}; list calls with: callintel sql \"SELECT call_id, "
                           "call_date, agent_id FROM calls ORDER BY call_date DESC\"")
    return found


@click.command()
@click.argument("call_id")
@click.option("--html", is_flag=True, help="Print the path of the call's HTML scorecard (written if missing).")
@config_option
@out_option
def scorecard(call_id, html, config_path, out) -> None:
    """Show one call's QA scorecard: every criterion with its result, points and evidence.

    \b
    Example:
      callintel scorecard c-0004
      callintel scorecard c-0004 --html     # then open the printed file in a browser
    """
    cfg = load_cli_config(config_path, out=out)
    bundle = _bundle(cfg, call_id)
    if not html:
        click.echo(text(bundle))
        return
    store = Store(cfg.out)
    page = store.page_path(bundle["call"])
    if not page.exists():
        with writing(f"scorecard page {page}", f"ask for it as a user who can write in {cfg.out}"):
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(render(bundle, cfg.input, page), encoding="utf-8")
    click.echo(str(page))


def _unknown_agent(cfg, agent: str) -> str:
    """A hint when no call at all is the agent's: a mistyped id reads like an agent with nothing to coach."""
    if query(cfg, "SELECT count(*) AS n FROM calls WHERE lower(agent_id) = lower($a)", {"a": agent})["n"].iloc[0]:
        return ""
    near = query(cfg, "SELECT DISTINCT agent_id FROM calls WHERE agent_id IS NOT NULL ORDER BY "
                      "levenshtein(lower(agent_id), lower($a)), agent_id LIMIT 3", {"a": agent})["agent_id"].tolist()
    return f" (no stored call has agent_id {agent!r}{'; the nearest: ' + ', '.join(near) if near else ''})"


@click.command()
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only calls on or after DATE.")
@click.option("--agent", help="Only this agent's calls.")
@click.option("--severity", type=click.Choice(SEVERITIES), help="Only calls flagged this severe or worse.")
@format_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Rows shown as a table.")
@config_option
@out_option
def flagged(since, agent, severity, fmt, limit, config_path, out) -> None:
    """List flagged calls worth a coach's time: newest day first, most severe first (the coaching_queue view).

    --format csv or json also gives each call's start time, direction, length and number of flags; in CSV the
    flags are one cell, "auto_fail; low_qa_score". --agent matches ids in any case.

    \b
    Example:
      callintel flagged --since 2026-11-16 --severity high
      callintel flagged --agent a_ruiz --format csv > a_ruiz.csv
    """
    cfg = load_cli_config(config_path, out=out)
    ranks = SEVERITIES[: SEVERITIES.index(severity) + 1] if severity else SEVERITIES
    columns = FLAGGED_COLUMNS if fmt == "table" else EXPORTED_COLUMNS
    frame = query(cfg, f"SELECT {columns} FROM coaching_queue WHERE severity IN $ranks AND ($since IS NULL OR "
                       "call_date >= $since) AND ($agent IS NULL OR lower(agent_id) = lower($agent))",  # any case
                  {"ranks": ranks, "since": since.date() if since else None, "agent": agent})
    if frame.empty:
        said = "no flagged calls match" + (_unknown_agent(cfg, agent) if agent else "")
        if fmt == "table":
            click.echo(said)
            return
        click.echo(said, err=True)  # beside an empty export, which a script still reads
    if fmt == "csv":  # a spreadsheet's cell: "auto_fail; low_qa_score", as the table shows them
        frame["flags"] = frame["flags"].map(lambda flags: "; ".join(flags))
    print_frame(frame, fmt, limit, colwidth=120)
