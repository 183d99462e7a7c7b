"""What every `callintel` command shares: one-line usage errors, the config and its options."""
from __future__ import annotations

import contextlib
import json
import math
from datetime import date, datetime

import click
import numpy as np
import pandas as pd

from pipeline.config import Config, ConfigError, load_config, with_overrides, with_shipped_signals
from pipeline.store import Store, StoreError


class UsageProblem(click.ClickException):
    """A user mistake: one line, no traceback, exit 2."""
    exit_code = 2


class Busy(click.ClickException):
    """Another callintel command holds the output folder: one line, exit 75 (sysexits' EX_TEMPFAIL, "try again
    later"), so a scheduler can tell a busy store from a mistake in the command or its configuration (2)."""
    exit_code = 75


WRITABLE = "give a file in a folder that exists and this user can write"
DUCKDB_HINTS = ("Candidate bindings", "Did you mean")  # the lines after an error that say what was meant


@contextlib.contextmanager
def writing(what: str, fix: str = WRITABLE):
    """A file the user asked for that cannot be written (no such folder, no permission, a full disk): one line
    naming it and what to do, exit 2, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise UsageProblem(f"{what}: cannot write it ({exc.strerror or exc}); {fix}") from None


def load_cli_config(path: str | None, **overrides) -> Config:
    try:
        cfg = with_shipped_signals(with_overrides(load_config(path), **overrides))
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    return cfg


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             help="Project file (default: ./callintel.yaml, else built-in defaults).")
out_option = click.option("--out", type=click.Path(file_okay=False),
                          help="Output folder (default from config: data/out).")
format_option = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                             show_default=True, help="How rows are printed.")


def query(cfg: Config, sql: str, params: dict | None = None) -> pd.DataFrame | None:
    """Rows of a read-only query on the published DuckDB file; DuckDB's own first line (and its hint for a
    misspelt name) on error."""
    try:
        with Store(cfg.out).connect_read_only() as con:
            relation = con.sql(sql, params=params)
            return _frame(relation) if relation is not None else None
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    except Exception as exc:  # duckdb.Error and its many subclasses
        lines = str(exc).splitlines()
        # DuckDB's hint for a misspelt name is the analyst's fix: 'Candidate bindings: "duration_s", ...'
        first = "; ".join(lines[:1] + [line for line in lines[1:] if line.startswith(DUCKDB_HINTS)])
        if "disabled by configuration" in first:  # COPY ... TO, read_csv('/etc/...'), ATTACH
            first += ("; queries read only the tables and views of callintel.duckdb (to save rows in a file: "
                      "--format csv > rows.csv)")
        raise UsageProblem(f"query failed: {first}{_upgrade_hint(cfg)}") from None


def _upgrade_hint(cfg: Config) -> str:
    """Why a query of this release can fail on a database an older release published, and what to do: a DuckDB
    catalog error alone ("Table with name current_topics does not exist!") reads like a broken install."""
    if not Store(cfg.out).published_by_other_release():
        return ""
    return (f"; {cfg.out / 'callintel.duckdb'} was published by another release of callintel: run `callintel run` "
            "once to publish this release's tables and views (nothing stored is transcribed again)")


def _frame(relation) -> pd.DataFrame:
    """The rows as a DataFrame, DATE columns as dates (pandas would make them midnight timestamps)."""
    frame = relation.df()
    for k, kind in enumerate(relation.types):
        if str(kind) == "DATE":
            frame.isetitem(k, frame.iloc[:, k].dt.date)
    return frame


def print_frame(frame: pd.DataFrame, fmt: str, limit: int, colwidth: int = 60) -> None:
    """Rows as a table, CSV or JSON. Lists and structs (a call's flags, a word's times) are JSON inside a CSV
    cell and nested in JSON, never a Python repr; dates and times are ISO 8601."""
    if fmt == "csv":
        cells = frame.map(lambda v: json.dumps(_plain(v)) if isinstance(v, (np.ndarray, list, dict)) else v)
        click.echo(cells.to_csv(index=False), nl=False)
    elif fmt == "json":
        rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
        click.echo(json.dumps(rows, indent=1))
    elif frame.empty:  # not pandas' "Empty DataFrame" repr
        click.echo("  ".join(map(str, frame.columns)) + "\n(no rows)")
    else:
        cells = frame.head(limit).map(_cell)
        click.echo(cells.to_string(index=False, max_colwidth=colwidth, na_rep="NULL"))
        if _cut(cells, colwidth):  # pandas ends a cut cell in "..." alone, which reads like the text's own
            click.echo(f"(text longer than {colwidth} characters is cut short here; --format csv or --format json "
                       "shows it whole)")
        if len(frame) > limit:
            click.echo(f"... {len(frame) - limit} more rows (use --limit or --format csv)")


def _cell(value):
    """A cell as the table shows it: a list as items, and missing as SQL says it (pandas has NaN, NaT and None)."""
    if isinstance(value, (np.ndarray, list)):
        return ", ".join(map(str, value))
    return "NULL" if value is None else value


def _cut(cells: pd.DataFrame, colwidth: int) -> bool:
    """Whether the table cut a cell short (only text is long enough to be: no number or date reaches 60)."""
    return any(len(str(v)) > colwidth for v in cells.to_numpy().ravel())


def _plain(value):
    """A cell as JSON has it: arrays as lists, numpy scalars as numbers, dates as ISO text, missing as null."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime | date):  # pd.Timestamp is a datetime
        return value.isoformat()
    return value
