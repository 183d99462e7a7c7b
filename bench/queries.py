"""Analyst-query benchmark: the `topic_trends` and `coaching_queue` views over 10M utterances.

Build (once, cached in --workdir): a store generated in DuckDB SQL, one day at a time, and written through
the real path: `Store.commit` (declared schemas, Parquet parts partitioned by call_date, manifest) then
`Store.publish(VIEWS)` (the DuckDB file with the real views). Defaults: 10,000,000 utterances in ~714k calls
(10-18 turns) over 60 days; a topic (or -1, outlier) for 30% of the utterances, from 40 topics of very
different sizes plus one that emerges in the last 10 days, fitted by two model versions; a scorecard for
every call (rubric v2, and v1 too for the first half of the period, as after a rubric change); flags on
~15% of calls (1-3 each). Utterances carry text but no word timings (as imported transcripts).

Measure, on the published file opened read-only (as analysts do): each query 5x, median, in three forms of
full materialisation: `fetchall()` (Python rows), `.df()` (pandas, as the CLI) and `.to_arrow_table()` (arrow).
Target (issue #8): <= 1 s each. `--explain` prints EXPLAIN ANALYZE of every query that misses.

Example:
    python bench/queries.py
    python bench/queries.py --utterances 1000000 --explain
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pipeline.cli_qa import FLAGGED_COLUMNS
from pipeline.store import Store
from pipeline.views import VIEWS

FIRST_DAY = date(2026, 9, 1)
TOPICS = 40
FLAGS = [("auto_fail", "high", "auto-fail on standard v2: no_profanity (agent_profanity at 1:12)"),
         ("low_qa_score", "high", "QA score 45% on standard v2, below 60%"),
         ("missing_disclosure", "high", "failed recording_disclosure (no recording_disclosure in the first 30 s)"),
         ("unverified_account_business", "high", "category compliance_risk"),
         ("escalation", "medium", "supervisor_request at 4:02"),
         ("churn_not_saved", "medium", "category unsaved_churn"),
         ("frustrated_customer", "medium", "category frustrated_customer"),
         ("ended_negative", "low", "sentiment_end -0.62 < -0.3"),
         ("long_silence", "low", "max_silence_s 48.2 > 30")]

CALLS = """
SELECT printf('c%07d', i) AS call_id, i, $day::DATE AS call_date,
       'rec/' || $day || '/' || printf('c%07d', i) || '.wav' AS source_path,
       md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS audio_sha256, (40000 + hm(hash(i, 1), 900000))::BIGINT AS file_size,
       epoch($day::DATE) + 86400.0 AS file_mtime,
       $day::DATE + to_seconds((8 * 3600 + hm(hash(i, 2), 12 * 3600))::BIGINT) AS started_at,
       (60 + hm(hash(i, 3), 900))::DOUBLE AS duration_s, 2 AS channels, 8000 AS sample_rate, 'left' AS agent_channel,
       printf('a_%03d', hm(hash(i, 4), 300)) AS agent_id,
       ['billing', 'technical', 'sales', 'retention', 'general'][1 + hm(hash(i, 5), 5)] AS queue,
       CASE WHEN hm(hash(i, 6), 10) < 8 THEN 'inbound' ELSE 'outbound' END AS direction, 'tiny.en' AS asr_model,
       'ok' AS status, 'bench-' || $day AS run_id, NULL AS extra, 10 + hm(hash(i, 7), 9) AS turns
FROM range($lo, $hi) r(i)
"""
UTTERANCES = """
SELECT call_id, i, utt_idx::INT AS utt_idx, CASE WHEN utt_idx % 2 = 0 THEN 'agent' ELSE 'customer' END AS speaker,
       utt_idx * 6.5 + hm(hash(i, utt_idx, 8), 100) / 100.0 AS start_s, start_s + 2 + hm(hash(i, utt_idx, 9), 40) / 10.0 AS end_s,
       $texts[1 + hm(hash(i, utt_idx, 10), len($texts))] AS text,
       []::STRUCT(word VARCHAR, start_s DOUBLE, end_s DOUBLE, probability FLOAT)[] AS words, 0.9::FLOAT AS confidence,
       (hm(hash(i, utt_idx, 11), 2001) / 1000.0 - 1)::FLOAT AS sentiment, call_date
FROM (SELECT *, unnest(range(turns)) AS utt_idx FROM c)
"""
UTTERANCE_TOPICS = """
SELECT call_id, utt_idx,
       CASE WHEN $d >= $days - 10 AND hm(hash(i, utt_idx, 13), 1000) < 6 * ($d - $days + 11) THEN $topics
            WHEN hm(hash(i, utt_idx, 14), 100) < 20 THEN -1
            ELSE floor($topics * pow(hm(hash(i, utt_idx, 15), 10000) / 10000.0, 2)) END::INT AS topic_id,
       (0.5 + hm(hash(i, utt_idx, 16), 500) / 1000.0)::FLOAT AS weight, call_date
FROM u WHERE hm(hash(i, utt_idx, 12), 1000) < $share * 1000
"""
SCORECARDS = """
SELECT call_id, 'standard' AS rubric_id, v.version AS rubric_version, pct AS points, 100.0 AS max_points, pct,
       pct >= 80 AS passed, auto AS auto_failed, call_date
FROM (SELECT *, (40 + hm(hash(i, 17), 61))::DOUBLE AS pct, hm(hash(i, 18), 40) = 0 AS auto FROM c) c,
     (SELECT 2 AS version UNION ALL SELECT 1 WHERE $d < $days / 2) v
"""
FLAG_ROWS = """
SELECT call_id, $flags[1 + f].id AS flag_id, $flags[1 + f].severity AS severity, $flags[1 + f].reason AS reason,
       run_id AS created_run, call_date
FROM (SELECT *, (hm(hash(i, 20), 9) + 3 * j) % 9 AS f
      FROM (SELECT *, unnest(range(1 + hm(hash(i, 21), 3))) AS j FROM c WHERE hm(hash(i, 19), 1000) < $flag_share * 1000))
"""


def texts() -> list[str]:
    from text_pipeline import generate

    return sorted({u["text"] for _, us in generate(3000, seed=3) for u in us})


# v1 scored the first half of the period, v2 (configured now) every call
RUBRICS = [{"rubric_id": "standard", "rubric_version": v, "current": v == 2, "rubric_hash": f"bench{v}", "pass_pct": 80.0,
            "criteria": [], "definition": "{}", "first_run": "bench"} for v in (1, 2)]


def build(args, work: Path) -> None:
    store = Store(work / "out")
    gen = duckdb.connect()
    gen.execute("CREATE MACRO hm(x, n) AS (x % n)::BIGINT").fetchall()
    calls_total = args.utterances // 14
    flags = [{"id": f, "severity": s, "reason": r} for f, s, r in FLAGS]
    common = {"days": args.days, "topics": TOPICS}
    started = time.perf_counter()
    with store.lock():
        for d in range(args.days):
            day = (FIRST_DAY + timedelta(days=d)).isoformat()
            lo, hi = calls_total * d // args.days, calls_total * (d + 1) // args.days
            gen.execute("CREATE OR REPLACE TEMP TABLE c AS " + CALLS, {"day": day, "lo": lo, "hi": hi}).fetchall()
            gen.execute("CREATE OR REPLACE TEMP TABLE u AS " + UTTERANCES, {"texts": args.texts}).fetchall()
            tables = {
                "calls": gen.sql("SELECT * EXCLUDE (i, turns) FROM c").to_arrow_table(),
                "utterances": gen.sql("SELECT * EXCLUDE (i) FROM u").to_arrow_table(),
                "utterance_topics": gen.sql(UTTERANCE_TOPICS, params={"d": d, "share": args.topic_share,
                                                                        **common}).to_arrow_table(),
                "scorecards": gen.sql(SCORECARDS, params={"d": d, "days": args.days}).to_arrow_table(),
                "flags": gen.sql(FLAG_ROWS, params={"flags": flags, "flag_share": args.flag_share}).to_arrow_table(),
            }
            store.commit("bench", d + 1, tables)
            print(f"  {day}: {len(tables['calls']):,} calls, {len(tables['utterances']):,} utterances "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        topics = []
        for version, fit_day, n in (("m1", args.days // 2, TOPICS), ("m2", args.days - 1, TOPICS + 1)):
            topics += [{"model_version": version, "topic_id": t, "label": f"topic {t}", "top_terms": [f"term{t}"],
                        "size": 1000 // (t + 1), "examples": [f"example of topic {t}"],
                        "first_seen": FIRST_DAY + timedelta(days=args.days - 10 if t == TOPICS else t % 7)}
                       for t in range(n)]
        store.commit("bench", 999, {"topics": topics, "rubrics": RUBRICS})
        print(f"  committed in {time.perf_counter() - started:.0f} s; publishing ...", flush=True)
        start = time.perf_counter()
        store.publish(VIEWS)
        print(f"  publish (DuckDB file from {sum(map(len, store.manifest().values()))} parts): "
              f"{time.perf_counter() - start:.1f} s")


def queries(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, dict]]:
    newest = con.execute("SELECT max(call_date) FROM calls").fetchall()[0][0]
    since = newest - timedelta(days=13)
    busy = con.execute("SELECT topic_id FROM utterance_topics WHERE topic_id >= 0 GROUP BY 1 ORDER BY count(*) DESC "
                       "LIMIT 1 OFFSET 2").fetchall()[0][0]
    return [
        ("topic_trends: all rows", "SELECT * FROM topic_trends", {}),
        ("topic_trends: one topic, last 14 days", "SELECT * FROM topic_trends WHERE topic_id = $t AND day >= $since",
         {"t": busy, "since": since}),
        ("topic_trends: `callintel trends --topics` query",
         ("SELECT t.topic_id AS key, coalesce(l.label, 'outlier') AS label, t.day, t.calls, t.share, "
          "t.baseline_share, t.z, t.emerging FROM topic_trends t LEFT JOIN (SELECT topic_id, arg_max(label, "
          "model_version) AS label FROM topics GROUP BY 1) l USING (topic_id)"), {}),
        ("coaching_queue: all rows", "SELECT * FROM coaching_queue", {}),
        ("coaching_queue: call_date >= last 14 days", "SELECT * FROM coaching_queue WHERE call_date >= $since",
         {"since": since}),
        ("coaching_queue: `callintel flagged --since` query",
         (f"SELECT {FLAGGED_COLUMNS} FROM coaching_queue WHERE severity IN $ranks AND ($since IS NULL OR "
          "call_date >= $since) AND ($agent IS NULL OR agent_id = $agent)"),
         {"ranks": ["high", "medium", "low"], "since": since, "agent": None}),
    ]


def trends_in_pandas(parquet: Path) -> int:
    """topic_trends the way the issue rules out: history loaded into pandas, computed by the (vectorised)
    numpy reference implementation the tests check the view against. Returns its row count."""
    import pandas as pd

    from pipeline.topic_trends import topic_trends

    rows = pd.read_parquet(parquet / "utterance_topics", columns=["topic_id", "call_id", "call_date"])
    topics = pd.read_parquet(parquet / "topics", columns=["topic_id", "first_seen"])
    return len(topic_trends(rows, topics.groupby("topic_id")["first_seen"].min().to_dict()))


def queue_in_pandas(parquet: Path) -> int:
    """coaching_queue in pandas from the Parquet parts: same rows and order as the view; its row count."""
    import pandas as pd

    flags = pd.read_parquet(parquet / "flags", columns=["call_id", "flag_id", "severity", "reason"])
    cards = pd.read_parquet(parquet / "scorecards", columns=["call_id", "rubric_id", "rubric_version", "pct",
                                                            "auto_failed"])
    calls = pd.read_parquet(parquet / "calls", columns=["call_id", "call_date", "started_at", "agent_id", "queue",
                                                       "direction", "duration_s"])
    flags["rank"] = flags["severity"].map({"high": 0, "medium": 1}).fillna(2).astype(int)
    flags = flags.sort_values(["call_id", "rank", "flag_id"])
    per_call = flags.groupby("call_id").agg(rank=("rank", "min"), n_flags=("flag_id", "size"),
                                            flags=("flag_id", list), reasons=("reason", "; ".join))
    rubrics = pd.read_parquet(parquet / "rubrics", columns=["rubric_id", "rubric_version", "current"])
    current = cards[cards["call_id"].isin(per_call.index)].merge(
        rubrics[rubrics["current"]].drop(columns="current"), on=["rubric_id", "rubric_version"])
    score = current.groupby("call_id").agg(score_pct=("pct", "min"), auto_failed=("auto_failed", "any"))
    queue = per_call.join(calls.set_index("call_id"), how="inner").join(score, how="left").reset_index()
    queue = queue.sort_values(["call_date", "rank", "n_flags", "score_pct", "started_at", "call_id"],
                              ascending=[False, True, False, True, False, True], na_position="last")
    return len(queue)


BASELINES = {"topic_trends": trends_in_pandas, "coaching_queue": queue_in_pandas}


def timed(con, sql: str, params: dict, form: str, repeat: int) -> tuple[float, float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        relation = con.sql(sql, params=params)
        result = (relation.fetchall() if form == "fetchall" else relation.df() if form == "df"
                  else relation.to_arrow_table())
        times.append(time.perf_counter() - start)
        rows = len(result)
    return statistics.median(times), min(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=10_000_000, help="utterances (default 10,000,000)")
    parser.add_argument("--days", type=int, default=60, help="days of calls (default 60)")
    parser.add_argument("--topic-share", type=float, default=0.3, help="utterances with a topic row (default 0.3)")
    parser.add_argument("--flag-share", type=float, default=0.15, help="calls with flags (default 0.15)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per query; the median counts")
    parser.add_argument("--workdir", type=Path, help="build folder, kept and reused "
                        "(default /tmp/callintel-queries-<utterances>)")
    parser.add_argument("--rebuild", action="store_true", help="build again even if the workdir has a store")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE every query that misses 1 s")
    args = parser.parse_args()

    work = args.workdir or Path(f"/tmp/callintel-queries-{args.utterances}")
    spec = {"utterances": args.utterances, "days": args.days, "topic_share": args.topic_share,
            "flag_share": args.flag_share}
    marker = work / "built.json"
    if args.rebuild or not marker.exists() or json.loads(marker.read_text()) != spec:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        args.texts = texts()
        print(f"building {args.utterances:,} utterances over {args.days} days in {work} ...")
        start = time.perf_counter()
        build(args, work)
        marker.write_text(json.dumps(spec))
        print(f"built in {time.perf_counter() - start:.0f} s")
    store = Store(work / "out")
    with store.lock():
        if not store.manifest()["rubrics"]:  # a store cached by a release without the table
            store.commit("bench", 1000, {"rubrics": RUBRICS})
        store.publish(VIEWS)  # a cached store gets the views of this release (the tables are kept)
    with store.connect_read_only() as con:
        sizes = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                 for t in ("calls", "utterances", "utterance_topics", "scorecards", "flags")}
        print(f"{store.db_path} ({store.db_path.stat().st_size / 2**30:.1f} GB): "
              + ", ".join(f"{t} {n:,}" for t, n in sizes.items())
              + f"; DuckDB {duckdb.__version__}, threads {con.execute('SELECT current_setting(' + chr(39) + 'threads' + chr(39) + ')').fetchall()[0][0]}")
        print(f"\n{'query: median (fastest) of ' + str(args.repeat) + ' runs':<52}{'rows':>9}{'fetchall':>16}"
              f"{'.df()':>16}{'arrow':>16}  target <= 1 s")
        missed, worsts = [], {}
        for name, sql, params in queries(con):
            results = {form: timed(con, sql, params, form, args.repeat) for form in ("fetchall", "df", "arrow")}
            worst = max(median for median, _, _ in results.values())
            print(f"{name:<52}{results['arrow'][2]:>9,}"
                  + "".join(f"{results[f][0]:9.2f}s ({results[f][1]:.2f})" for f in results)
                  + f"  {'met' if worst <= 1 else 'MISSED'}", flush=True)
            if worst > 1:
                missed.append((name, sql, params))
            view = name.split(":")[0]
            if view in BASELINES:
                worsts[view] = max(worsts.get(view, 0.0), worst)
        print("\nbaseline (same run): the same answer computed in pandas from the Parquet parts, as a tool "
              "that reloads history into pandas would")
        for view, worst in worsts.items():
            times, n = [], 0
            for _ in range(3):
                start = time.perf_counter()
                n = BASELINES[view](store.parquet)
                times.append(time.perf_counter() - start)
            base = statistics.median(times)
            print(f"{view:<16} pandas {base:6.2f} s ({n:,} rows); slowest form of the view {worst:5.2f} s -> "
                  f"ratio view / pandas {worst / base:.2f}")
        for name, sql, params in missed if args.explain else []:
            print(f"\n=== EXPLAIN ANALYZE: {name}")
            con.execute("PRAGMA explain_output = 'all'").fetchall()
            for _, plan in con.execute("EXPLAIN ANALYZE " + sql, params).fetchall():
                print(plan)


if __name__ == "__main__":
    main()
