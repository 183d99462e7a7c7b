"""`callintel`: a thin command line over pipeline/ and flows.py.

Exit status: 0 success, 1 some calls failed (the rest were written), 2 bad usage or config, 3 the run
stopped on an error (what it committed is kept; its `runs` row says where and why).
"""
from __future__ import annotations

import signal
import sys

import click

from pipeline.cli_checks import (check_embedding, check_file_names, check_inputs, check_metadata, check_out,
                                  check_out_room, check_prefect_server, check_redaction, check_rubric_scopes,
                                  check_rubric_versions, check_rules_code)
from pipeline.cli_qa import flagged, scorecard
from pipeline.cli_topics import topics
from pipeline.cli_trends import trends
from pipeline.cli_common import (Busy, UsageProblem, config_option, format_option, load_cli_config, out_option,
                                 print_frame, query)
from pipeline.config import Config, ConfigError, redaction_warning
from pipeline.store import Store
from pipeline.store_lock import StoreBusy

SHOWN = 20  # failures and notes printed after a run; the rest are in the store
RUN_STOPPED = 3  # exit status of a run an error stopped: not a bad call (1), not a usage mistake (2)
INTERRUPTED = 130  # as a shell reports a command a Ctrl-C stopped (128 + SIGINT)
TERMINATED = 143  # and one SIGTERM stopped (128 + SIGTERM): systemd, `kill`, a container's stop


class Terminated(BaseException):
    """SIGTERM reached the run: raised where it was, so the run ends as on a Ctrl-C (Prefect's flow engine sends
    the signal on to this handler once it has recorded the crash)."""


def _terminated(signum, frame):
    raise Terminated()

SIGNALS_QUERY = "SELECT signal_id, count(DISTINCT call_id) AS calls FROM signal_hits GROUP BY 1 ORDER BY 2 DESC"
EXAMPLE_QUERY = ("SELECT call_date, count(*) AS calls, round(sum(duration_s)/60) AS minutes "
                 "FROM calls GROUP BY 1 ORDER BY 1")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="callintel")
def cli() -> None:
    """callintel: conversation intelligence for contact centres, offline and SQL-native.

    \b
    Example:
      callintel run --input data/demo
      callintel sql "SELECT speaker, count(*) FROM utterances GROUP BY 1"
    """


wait_option = click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=0, show_default=True,
                           help="Seconds to wait for a run writing to the same --out before giving up.")


@cli.command()
@config_option
@click.option("--input", "input_dir", type=click.Path(file_okay=False), help="Recordings folder, searched recursively.")
@click.option("--transcripts", "transcripts_dir", type=click.Path(file_okay=False),
              help="Folder of ready-made transcripts, one JSON or CSV file per call.")
@out_option
@click.option("--signals", "signals_dir", type=click.Path(file_okay=False), help="Signals/rubric/flags folder.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only calls started on or after DATE.")
@click.option("--workers", type=click.IntRange(min=1), help="Transcription processes (default: one per core).")
@wait_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(config_path, input_dir, transcripts_dir, out, signals_dir, since, workers, wait_s, quiet) -> None:
    """Run the nightly flow once over new recordings and transcripts.

    Already stored calls are skipped, so running it again is cheap and safe. Exit status 0 when every
    call was stored, 1 when some failed (listed in the failures table; the rest were stored), 2 on a
    usage or config mistake, 3 when an error stopped the run, 130 when a Ctrl-C did and 143 a SIGTERM (what it
    committed is kept), 75 when another callintel command is writing to the output folder.

    \b
    Example:
      callintel run --input data/demo --out data/out
      callintel run --transcripts data/demo_transcripts --since 2026-11-15
    """
    cfg = load_cli_config(config_path, input=input_dir, transcripts=transcripts_dir, out=out, signals=signals_dir,
                  workers=workers)
    check_inputs(cfg)
    if warning := redaction_warning(cfg):  # said at the start, before the night's progress and summary
        click.echo(warning, err=True)
    import flows  # Prefect is slow to import; only commands that run flows pay for it

    check_prefect_server(flows.api_url(), "or unset PREFECT_API_URL to run on a temporary one")
    check_out(cfg)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        with Store(cfg.out).reserve(wait_s):  # before Prefect starts: a second run is refused at once

            summary = flows.run_nightly(config=config_path, input=str(cfg.input), out=str(cfg.out),
                                        transcripts_dir=str(cfg.transcripts) if cfg.transcripts else None,
                                        signals=str(cfg.signals), since=since.date() if since else None,
                                        workers=cfg.workers(), progress=False if quiet else None)
    except StoreBusy as exc:
        raise Busy(str(exc)) from None
    except (KeyboardInterrupt, Terminated) as exc:  # Ctrl-C or SIGINT; SIGTERM from a supervisor
        stopped = "Stopped (SIGTERM)" if isinstance(exc, Terminated) else "Interrupted"
        click.echo(f"{stopped}: what the run committed is kept (the next run marks this one 'interrupted' in the "
                   "runs table); run it again and it does the rest.", err=True)
        sys.exit(TERMINATED if isinstance(exc, Terminated) else INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 (Prefect has logged the traceback; the scheduler needs the verdict)
        from pipeline.runs import error_line

        said = error_line(exc, cfg.out)
        said += "" if said.endswith((".", "!", "?")) else "."  # many exceptions' messages end a sentence already
        click.echo(f"Error: the run stopped: {said} What it committed is kept, and its row in the runs "
                   "table says where it stopped (status 'failed'; 'interrupted', written by the next run, when the "
                   "store could not be written to); run it again once fixed and it does the rest.", err=True)
        sys.exit(RUN_STOPPED)
    _print_summary(summary)
    sys.exit(1 if summary["failures"] else 0)


def _print_summary(summary: dict) -> None:
    c = summary["counts"]
    echo = lambda s="": click.echo(s, err=False)  # noqa: E731
    echo()
    echo(f"callintel run {summary['run_id']}: {summary['status']}")
    # skipped counts copies of stored calls and files deleted on request too: each has its note
    echo(f"  found       {c['found']} recordings/transcripts ({c['skipped']} not new: stored already, before --since "
         "or set aside as a note says)")
    echo(f"  new calls   {c['transcribed'] + c['imported']} ({c['transcribed']} transcribed, {c['imported']} imported)")
    echo(f"  utterances  {c['utterances']} ({c['redacted']} pieces of personal data redacted)")
    retag = f", {c['retagged']} stored calls re-tagged" if c["retagged"] else ""
    echo(f"  signals     {c['tagged']} calls tagged with library {summary['signals_hash']}{retag}")
    rescored = f", {c['rescored']} stored calls re-scored" if c["rescored"] else ""
    echo(f"  QA          {c['scored']} calls scored{rescored}; {c['flagged']} flagged for coaching")
    echo(f"  failures    {c['failed']}")
    for f in summary["failures"][:SHOWN]:
        said = f["error"].removeprefix(f"{f['source_path']}: ")  # most errors name their file first: not twice
        echo(f"    {f['source_path']} [{f['stage']}]: {said}")
    if len(summary["failures"]) > SHOWN:
        echo(f"    ... and {len(summary['failures']) - SHOWN} more: callintel sql \"SELECT source_path, error FROM "
             f"failures WHERE run_id = '{summary['run_id']}'\" --out {summary['out']}")
    for note in summary["notes"][:SHOWN]:
        echo(f"  note: {note}")
    if len(summary["notes"]) > SHOWN:
        echo(f"  ... and {len(summary['notes']) - SHOWN} more notes in {summary['summary_path']}")
    steps = [f"{name} {s:.1f} s" for name, s in summary.get("seconds", {}).items() if s >= 0.05]
    if steps:
        echo(f"  time        {', '.join(steps)}")
    asr_s = summary.get("seconds", {}).get("recordings", 0.0)
    if summary.get("audio_s") and asr_s > 0:
        echo(f"  audio       {summary['audio_s'] / 60:.1f} min of recordings, transcribed and stored in "
             f"{asr_s:.1f} s ({summary['audio_s'] / asr_s:.1f}x real time)")
    echo(f"  database    {summary['database']}")
    echo(f"  summary     {summary['summary_path']}")
    echo()
    echo("Try (after `. .venv/bin/activate` if callintel is not on your PATH):")
    echo(f'  callintel sql "{EXAMPLE_QUERY}"' + (f" --out {summary['out']}" if summary["out"] else ""))
    echo(f'  callintel sql "{SIGNALS_QUERY}"' + (f" --out {summary['out']}" if summary["out"] else ""))
    echo("  callintel flagged --severity high" + (f" --out {summary['out']}" if summary["out"] else ""))


@cli.command()
@config_option
def serve(config_path) -> None:
    """Serve the nightly flow as a Prefect deployment on the configured cron (default 02:00 local).

    Runs until stopped. Needs a Prefect server, whose scheduler makes the runs (and which keeps their
    history, with a UI): start `prefect server start` beside it and set
    PREFECT_API_URL=http://127.0.0.1:4200/api before serving. A night still running when the next is
    due makes the next wait.

    \b
    Example:
      callintel serve --config callintel.yaml
    """
    cfg = load_cli_config(config_path)
    check_inputs(cfg)
    import flows

    if not flows.api_url():
        raise UsageProblem("callintel serve needs a Prefect server: a temporary one schedules nothing. Start "
                           "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api")
    check_prefect_server(flows.api_url(), "or fix PREFECT_API_URL")
    zone = cfg.schedule.timezone or "local time"
    click.echo(f"serving 'nightly' on cron '{cfg.schedule.cron}' ({zone}); Ctrl-C stops")
    flows.serve_nightly(config_path)


signals_option = click.option("--signals", "signals_dir", type=click.Path(file_okay=False),
                              help="Signals folder (default from config: signals/).")


def _tagger(cfg: Config):
    from pipeline.signals import load_signals
    from pipeline.tag import Tagger

    try:
        return Tagger(load_signals(cfg.signals))
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None


@cli.command()
@config_option
@signals_option
def check(config_path, signals_dir) -> None:
    """Validate callintel.yaml and the signals folder, test every signal on its examples, list the metadata.csv
    rows the next night will refuse, and load the topic embedding model (on first use it is derived into
    ~/.cache/callintel); write nothing else. Exit status 0 when all is well, 1 when the next night will refuse
    some inputs (as it then exits 1), 2 on a mistake in the configuration or signals.

    \b
    Example:
      callintel check --config callintel.yaml
    """
    cfg = load_cli_config(config_path, signals=signals_dir)
    check_inputs(cfg)
    tagger = _tagger(cfg)
    problems = tagger.check_examples()
    if problems:
        raise UsageProblem(f"{len(problems)} signal example(s) do not hold:\n  " + "\n  ".join(problems))
    lib = tagger.library
    zone = cfg.schedule.timezone or "this machine's"  # what calls' days are counted in: a wrong one misfiles them
    click.echo(f"config OK ({cfg.source}, hash {cfg.hash()}): input {cfg.input}, out {cfg.out}, "
               f"model {cfg.asr.model}, schedule '{cfg.schedule.cron}', centre's zone {zone}")
    check_out_room(cfg.out)
    click.echo(f"signals OK ({cfg.signals}, hash {lib.hash}): {len(lib.signals)} signals, "
               f"{len(lib.categories)} categories, every example and counter-example holds")
    from pipeline.rubric import load_qa

    rules = load_qa(cfg.signals, lib)
    for r in rules.rubrics:
        click.echo(f"rubric OK: {r.id} v{r.version} ({r.scope}), {len(r.criteria)} criteria, "
                   f"{sum(c.points for c in r.criteria):g} points, pass at {r.pass_pct:g}%")
    if not rules.rubrics:  # valid (a centre may only want signals), but a wrong --signals folder looks the same
        click.echo(f"WARNING: no rubric in {cfg.signals}: no call will be scored (see README.md, \"QA scorecards, "
                   "flags and the coaching queue\")")
    click.echo(f"flags OK: {len(rules.flags)} rules")
    check_rubric_versions(cfg, rules)
    check_rubric_scopes(cfg, rules)
    refused = check_metadata(cfg) + check_file_names(cfg)
    check_redaction(cfg)
    check_rules_code(cfg)
    check_embedding(cfg)
    if refused:  # the night runs, and ends with exit 1 for these: a pre-flight check says so the same way
        click.echo(f"check: {refused} input problem(s) above; the next night stores the rest and fails these", err=True)
        sys.exit(1)


@cli.group()
def signals() -> None:
    """Try the signal library on your own text.

    \b
    Example:
      callintel signals test "I want to cancel my subscription" --speaker customer
    """


@signals.command("test")
@click.argument("text")
@click.option("--speaker", type=click.Choice(["agent", "customer", "unknown"]),
              help="Who says it (default: ignore each signal's speaker scope).")
@config_option
@signals_option
def signals_test(text, speaker, config_path, signals_dir) -> None:
    """Show which signals fire on TEXT, on which words, and why a negated one did not.

    \b
    Example:
      callintel signals test "I don't want to cancel, just fix the app" --speaker customer
    """
    tagger = _tagger(load_cli_config(config_path, signals=signals_dir))
    hits, negated = tagger.match(text, speaker)
    lib = tagger.library
    for hit in hits:
        s = lib.signal(hit.signal_id)
        window = f", only {s.window} of a call" if s.window else ""  # the text has no times: say what a call needs
        click.echo(f"fires    {hit.signal_id:<24} on {hit.matched_text!r} (speaker {s.speaker}{window})")
    for n in negated:
        click.echo(f"negated  {n.signal_id:<24} on {n.matched_text!r}: negation cue {n.cue!r} before it "
                   "(set `negation: ignore` to count it anyway)")
    others = [h for h in tagger.match(text, None)[0] if h.signal_id not in {x.signal_id for x in hits + negated}]
    for hit in others if speaker else []:  # said by the other side, it would fire
        click.echo(f"not for  {hit.signal_id:<24} on {hit.matched_text!r}: the signal is the "
                   f"{lib.signal(hit.signal_id).speaker}'s, not the {speaker}'s")
    if not hits and not negated and not (speaker and others):
        click.echo("no signal fires")
    present = {h.signal_id for h in hits}
    for category in tagger.categories(present):
        click.echo(f"category {category.id}")


@cli.command()
@click.argument("query_text", metavar="QUERY")
@config_option
@out_option
@format_option
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="Rows shown as a table.")
def sql(query_text, config_path, out, fmt, limit) -> None:
    """Run a read-only SQL query on the DuckDB file (its tables and views: README.md, "Outputs").

    \b
    Example:
      callintel sql "SELECT speaker, count(*) AS n FROM utterances GROUP BY 1"
      callintel sql "SELECT * FROM calls" --format csv > calls.csv
    """
    if not query_text.strip().strip(";"):  # `callintel sql ""`: a shell variable that was empty
        raise UsageProblem('no query given; e.g. callintel sql "SELECT count(*) AS calls FROM calls"')
    frame = query(load_cli_config(config_path, out=out), query_text)
    if frame is not None:
        print_frame(frame, fmt, limit)


@cli.command()
@click.option("--call-id", "call_ids", multiple=True, help="A call to delete (repeatable).")
@click.option("--agent", help="Delete every call of this agent.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Delete every call on or after DATE.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@wait_option
@config_option
@out_option
def forget(call_ids, agent, since, yes, wait_s, config_path, out) -> None:
    """Delete calls from every table, Parquet partition and HTML page (a data-subject request).

    The deletion is recorded in the `deletions` table (who and when, not what), and a
    forgotten call is never stored again even if its recording is still in the input folder.

    \b
    Example:
      callintel forget --call-id c-0004
      callintel forget --agent a_ruiz --since 2026-11-01 --yes --wait 3600   # after tonight's run
    """
    from pipeline.forget import deletion_record, select_calls
    from pipeline.views import VIEWS

    if not (call_ids or agent or since):
        raise UsageProblem("say what to forget: --call-id ID, --agent ID and/or --since DATE")
    store = Store(load_cli_config(config_path, out=out).out)
    try:
        with store.lock(wait_s):
            calls = store.read("calls", ["call_id", "agent_id", "call_date"])
            chosen = select_calls(calls, call_ids, agent, since.date() if since else None)
            if not chosen:
                raise UsageProblem("no stored call matches; nothing was deleted")
            if missed := sorted(set(call_ids) - chosen):  # a mistyped id in a request must not pass unseen
                click.echo(f"WARNING: no stored call{' also' * bool(agent or since)} matches --call-id "
                           f"{', '.join(missed)} (mistyped, forgotten before, or not stored yet); not deleted")
            if not yes:
                _confirm(f"Delete {len(chosen)} call(s) from every table?")
            record = deletion_record(len(chosen), call_id=call_ids, agent=agent, since=since)
            rows = store.forget(record["deletion_id"], chosen, record)
            store.publish(VIEWS, fresh=True)
    except StoreBusy as exc:
        raise Busy(str(exc)) from None
    click.echo(f"forgot {len(chosen)} call(s): {rows} rows removed from every table; "
               f"recorded as {record['deletion_id']}")


def _confirm(question: str) -> None:
    """Ask; with no answer to read (cron, a pipe, Ctrl-D) say how to go ahead without asking."""
    try:
        if click.confirm(question, default=False):
            return
    except click.Abort:
        raise UsageProblem("no answer (no terminal to ask at?): add --yes to delete without asking; "
                           "nothing was deleted") from None
    click.echo("nothing was deleted")  # a "no" is an answer, not an error
    raise click.exceptions.Exit(0)


cli.add_command(scorecard)
cli.add_command(flagged)
cli.add_command(trends)
cli.add_command(topics)


def main() -> None:
    cli(prog_name="callintel")


if __name__ == "__main__":
    main()
