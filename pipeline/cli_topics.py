"""`callintel topics`: the discovered topics, and promoting one to a candidate signal. Read-only on DuckDB."""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli_common import (WRITABLE, UsageProblem, config_option, format_option, load_cli_config, out_option,
                                 print_frame, query, writing)

CURRENT = "SELECT * FROM current_topics"


@click.group()
def topics() -> None:
    """Topics discovered in what customers said that no signal tagged.

    \b
    Example:
      callintel topics list
      callintel topics promote 0 --write signals/app_crash.yaml
    """


@topics.command("list")
@config_option
@out_option
@format_option
def list_topics(config_path, out, fmt) -> None:
    """List the current topics: id, label, size, first seen, an example.

    \b
    Example:
      callintel topics list --out data/out
      callintel topics list --format json     # the examples whole
    """
    frame = query(load_cli_config(config_path, out=out),
                  f"SELECT topic_id, label, size, first_seen, examples[1] AS example FROM ({CURRENT}) "
                  "ORDER BY size DESC")
    if frame.empty and fmt == "table":
        click.echo("no topics in the current model: topic discovery needs enough untagged customer turns "
                   "(and a turn a promoted signal tags is no longer one)")
        return
    print_frame(frame, fmt, 100, colwidth=80)


@topics.command()
@click.argument("topic_id", type=int)
@click.option("--write", "target", type=click.Path(dir_okay=False),
              help="Write the YAML to this file (never overwrites).")
@config_option
@out_option
def promote(topic_id, target, config_path, out) -> None:
    """Turn a discovered topic into a candidate signal (YAML) to review and add to signals/.

    The candidate's phrases come from the topic's distinctive terms and its examples are the
    topic's representative turns; only phrases that fire on an example are kept, so
    `callintel check` passes once you move it into signals/.

    \b
    Example:
      callintel topics promote 0
      callintel topics promote 0 --write signals/app_crash.yaml && callintel check
    """
    from pipeline.topics import candidate_signal

    frame = query(load_cli_config(config_path, out=out), f"SELECT * FROM ({CURRENT}) WHERE topic_id = $id",
                  {"id": topic_id})
    if frame.empty:
        raise UsageProblem(f"no topic {topic_id}; list them with: callintel topics list")
    row = frame.iloc[0].to_dict()
    text = candidate_signal(row, list(row["examples"] if row["examples"] is not None else []))
    if not target:
        click.echo(text, nl=False)
        return
    path = Path(target)
    if path.exists():
        raise UsageProblem(f"{path} already exists; choose another file (nothing was written)")
    with writing(f"--write {path}", f"{WRITABLE} (nothing was written)"):
        path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}: review it, then `callintel check`")
