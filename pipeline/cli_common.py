"""What every `callintel` command shares: one-line usage errors, the config and its options."""
from __future__ import annotations

import json

import click
import pandas as pd

from pipeline.config import Config, ConfigError, load_config, with_overrides
from pipeline.store import Store, StoreError


class UsageProblem(click.ClickException):
    """A user mistake: one line, no traceback, exit 2."""
    exit_code = 2


def load_cli_config(path: str | None, **overrides) -> Config:
    try:
        cfg = with_overrides(load_config(path), **overrides)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    return cfg


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             help="Project file (default: ./callintel.yaml, else built-in defaults).")
out_option = click.option("--out", type=click.Path(file_okay=False), help="Output folder (default from config: data/out).")
format_option = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                             show_default=True, help="How rows are printed.")


def query(cfg: Config, sql: str, params: dict | None = None) -> pd.DataFrame | None:
    """Rows of a read-only query on the published DuckDB file; DuckDB's own first line on error."""
    try:
        with Store(cfg.out).connect_read_only() as con:
            relation = con.sql(sql, params=params)
            return relation.df() if relation is not None else None
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    except Exception as exc:  # duckdb.Error and its many subclasses
        raise UsageProblem(f"query failed: {str(exc).splitlines()[0]}") from None


def print_frame(frame: pd.DataFrame, fmt: str, limit: int, colwidth: int = 60) -> None:
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(json.loads(frame.to_json(orient="records", date_format="iso")), indent=1))
    else:
        click.echo(frame.head(limit).to_string(index=False, max_colwidth=colwidth))
        if len(frame) > limit:
            click.echo(f"... {len(frame) - limit} more rows (use --limit or --format csv)")
