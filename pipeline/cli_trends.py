"""`callintel trends`: what is rising, from the signal_trends / topic_trends views. Read-only on DuckDB."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import click
import pandas as pd

from pipeline.cli_common import UsageProblem, config_option, load_cli_config, out_option, query, writing
from pipeline.views import BASELINE_DAYS

TOP = 8


def _last_call_day(cfg) -> date | None:
    """The window ends on the last day with stored calls, for signals and topics alike (topic_trends has only
    days whose calls had untagged turns)."""
    found = query(cfg, "SELECT max(call_date) AS day FROM calls")["day"]
    return None if found.empty or pd.isna(found.iloc[0]) else pd.Timestamp(found.iloc[0]).date()


def _window(days: int, last: date) -> str:
    """What the header says the window is, and how old its last day is when calls stopped coming."""
    first = last - timedelta(days=days - 1)
    span = f"on {last}" if days == 1 else f"in the {days} days {first} to {last}"
    old = (date.today() - last).days
    return span + (f" (the last day with calls, {old} days ago)" if old > 1 else "")


def _trends(cfg, topics: bool, days: int, last: date | None) -> pd.DataFrame | None:
    """The trend rows of the window (empty: none stored at all), or None when it has none though earlier days do
    (said here)."""
    if topics:
        sql = ("SELECT t.topic_id AS key, coalesce(l.label, 'outlier') AS label, t.day, t.calls, t.share, "
               "t.baseline_share, t.z, t.emerging FROM topic_trends t LEFT JOIN (SELECT topic_id, arg_max(label, "
               "model_version) AS label FROM topics GROUP BY 1) l USING (topic_id)")
    else:
        sql = ("SELECT signal_id AS key, signal_id AS label, day, calls, share, baseline_share, z, emerging "
               "FROM signal_trends")
    frame = query(cfg, sql)
    if frame.empty:
        return frame
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    last = last or frame["day"].max()
    shown = frame[(frame["day"] > last - timedelta(days=days)) & (frame["day"] <= last)]
    if shown.empty:  # none in the window, though some before it: said as such, not as "none stored yet"
        click.echo(f"No {'topics' if topics else 'signals'} {_window(days, last)}; the last on {frame['day'].max()}.")
        return None
    return shown


def _call_days(cfg, days: int, last: date) -> set:
    """The days in the shown window that have stored calls."""
    found = query(cfg, "SELECT DISTINCT call_date AS day FROM calls WHERE call_date > $first AND call_date <= $last",
                  {"first": last - timedelta(days=days), "last": last})
    return set(pd.to_datetime(found["day"]).dt.date)


def _top_keys(frame: pd.DataFrame) -> list:
    """Emerging keys first, then the most frequent, at most TOP of them."""
    emerging = frame.loc[frame["emerging"], "key"].unique().tolist()
    busiest = frame[frame["key"].astype(str) != "-1"].groupby("key")["calls"].sum().sort_values(ascending=False)
    keys = emerging + [k for k in busiest.index if k not in emerging and busiest[k] > 0]
    return keys[:TOP]


def _plot(frame: pd.DataFrame, keys: list, path: str, what: str, with_calls: list) -> None:
    """Each key's share on every day: 0 on a day with calls and none of its, a gap on a day without calls (a line
    drawn straight across such days read as a trend through them)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    calendar = [d.date() for d in pd.date_range(min(with_calls), max(with_calls))]
    fig, ax = plt.subplots(figsize=(10, 5))
    for key in keys:
        rows = frame[frame["key"] == key].sort_values("day")
        label = str(rows["label"].iloc[0])
        width = 2.5 if rows["emerging"].any() else 1.2
        share = dict(zip(rows["day"], rows["share"]))
        shares = [share.get(day, 0.0 if day in with_calls else float("nan")) for day in calendar]
        line, = ax.plot(calendar, shares, marker="o", label=label, linewidth=width)
        hot = rows[rows["emerging"]]
        ax.scatter(hot["day"], hot["share"], s=160, facecolors="none", edgecolors=line.get_color(), linewidths=2)
    ax.set_ylabel("share of the day's calls")
    ax.set_title(f"{what}: share of calls per day (circled: emerging; a gap: no calls that day)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    # beside the chart, not on it: inside, it hid the first days' points of the busiest lines
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    try:
        with writing(f"--plot {path}"):
            fig.savefig(path, dpi=120, bbox_inches="tight")  # the legend outside the axes is kept
    except ValueError as exc:  # a name matplotlib cannot tell a format from: x.txt
        raise UsageProblem(f"--plot {path}: {exc}; end the name in .png") from None
    finally:
        plt.close(fig)


def _nothing_yet(cfg, what: str) -> None:
    """No trend rows: before any run is a mistake; after runs, the stored calls simply have none."""
    calls = int(query(cfg, "SELECT count(*) AS n FROM calls")["n"].iloc[0])
    if not calls:
        raise UsageProblem(f"no calls stored yet in {cfg.out}: run `callintel run` first")
    why = ("topics are found among the turns no signal tags, once there are enough of them" if what == "topics"
           else "no configured signal was said in them")
    click.echo(f"No {what} in the {calls} stored call{'s' * (calls != 1)} yet: {why}.")


@click.command()
@click.option("--days", type=click.IntRange(min=1), default=14, show_default=True, help="How many recent days.")
@click.option("--topics", is_flag=True, help="Discovered topics (topic_trends).")
@click.option("--signals", is_flag=True, help="Configured signals (signal_trends; the default).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Also draw the share per day to this PNG file.")
@config_option
@out_option
def trends(days, topics, signals, plot, config_path, out) -> None:
    """What is rising: emerging signals or topics, and calls per day for the busiest ones.

    A key is emerging on a day when at least 2 calls have it and its share of the day's calls is far
    above its share over the 7 days before (z >= 3), or it was first seen in the 3 days up to that
    day and is in at least 2 calls that day (a signal) or 2 turns (a topic: it exists only because
    turns clustered).

    \b
    Example:
      callintel trends --days 14
      callintel trends --topics --days 14 --plot trends.png
    """
    if topics and signals:  # one table and one plot are of one kind: say so rather than let one flag win
        raise UsageProblem("--topics and --signals: give one of them (signals when neither)")
    what = "topics" if topics else "signals"
    cfg = load_cli_config(config_path, out=out)
    last_call = _last_call_day(cfg)
    frame = _trends(cfg, topics, days, last_call)
    if frame is None:
        return
    if frame.empty:
        _nothing_yet(cfg, what)
        return
    hot = frame[frame["emerging"]].sort_values(["day", "z"], ascending=[False, False])
    last = last_call or frame["day"].max()
    window = _window(days, last)
    click.echo(f"Emerging {what} {window}:" if len(hot) else f"No emerging {what} {window}.")
    for row in hot.itertuples():
        base = (f"none in the {BASELINE_DAYS} days before" if pd.isna(row.baseline_share) or row.baseline_share == 0
                else f"baseline {row.baseline_share:.0%}")
        z = "" if pd.isna(row.z) else f", z {row.z:.1f}"
        calls = f"{row.calls} call{'' if row.calls == 1 else 's'}"
        click.echo(f"  {row.day}  {row.label}: {calls}, {row.share:.0%} of the day's calls ({base}{z})")
    keys = _top_keys(frame)
    table = frame[frame["key"].isin(keys)].pivot_table(index="label", columns="day", values="calls", fill_value=0,
                                                       aggfunc="sum").astype(int)
    # every day with calls: topic_trends has only the days whose calls had turns no signal tagged, and a day left
    # out reads as a day without calls
    table = table.reindex(columns=sorted(set(table.columns) | _call_days(cfg, days, last)), fill_value=0)
    click.echo(f"\nCalls per day ({what}):")
    click.echo(table.rename(columns=lambda d: d.strftime("%m-%d")).to_string() if len(table) else
               f"  (no calls with any {what[:-1]} in these days)")
    if plot:
        plot += "" if Path(plot).suffix else ".png"  # as matplotlib names it: say the file it wrote
        _plot(frame, keys, plot, what, list(table.columns) or sorted(set(frame["day"])))
        click.echo(f"\nplot: {plot}")
