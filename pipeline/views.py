"""Analyst views in the DuckDB file, computed by DuckDB over the stored tables (never in pandas)."""

# Trend statistics, the same for signals and topics (pipeline/topic_trends.py holds the same
# definitions vectorised in numpy; a test checks both agree):
# - share: the key's calls / the day's calls; baseline_share: the same pooled over the BASELINE_DAYS
#   calendar days before (the day excluded), null without calls then;
# - z: pooled two-proportion z-test of the day against the baseline (defined even when the baseline
#   never saw the key); null without a baseline, 0 without variation;
# - emerging: rising (at least MIN_CALLS calls that day and z >= Z_THRESHOLD) or new (first seen in
#   the last NEW_DAYS days, after the first day of data, and that day in NEW_MIN_MENTIONS turns of a
#   topic, or calls of a signal). A new topic needs no second call: it exists only because several turns
#   clustered, and a centre wants to hear about it the day it appears. A signal is configured, not found:
#   one caller saying "Metro Mobile" twice is no trend. The outlier topic (-1) is never emerging.
BASELINE_DAYS, Z_THRESHOLD, MIN_CALLS, NEW_DAYS, NEW_MIN_MENTIONS = 7, 3.0, 2, 3, 2


def trend_sql(key: str, count: str, events: str, universe: str, first_seen: str, new_in: str = "n") -> str:
    """Per key per day with calls: events (`count`), calls, share, baseline_share, z, emerging.

    events: rows (key, call_id, call_date); universe: the calls of each day (call_id, call_date);
    first_seen: rows (key, first_seen); new_in: what a new key needs NEW_MIN_MENTIONS of that day, events ("n")
    or calls ("calls").
    """
    return f"""
WITH days AS (SELECT call_date AS day, count(DISTINCT call_id) AS total_calls FROM ({universe}) GROUP BY 1),
per AS (SELECT {key} AS k, call_date AS day, count(*) AS n, count(DISTINCT call_id) AS calls
        FROM ({events}) GROUP BY 1, 2),
grid AS (SELECT k.k, d.day, d.total_calls, coalesce(p.n, 0) AS n, coalesce(p.calls, 0) AS calls
         FROM (SELECT DISTINCT k FROM per) k CROSS JOIN days d LEFT JOIN per p ON p.k = k.k AND p.day = d.day),
win AS (SELECT *, coalesce(sum(calls) OVER w, 0) AS calls0, coalesce(sum(total_calls) OVER w, 0) AS total0
        FROM grid
        WINDOW w AS (PARTITION BY k ORDER BY day
                     RANGE BETWEEN INTERVAL {BASELINE_DAYS} DAY PRECEDING AND INTERVAL 1 DAY PRECEDING)),
seen AS (SELECT {key} AS k, min(first_seen) AS first_seen FROM ({first_seen}) GROUP BY 1),
stats AS (SELECT w.*, w.calls / w.total_calls AS share,
                 CASE WHEN w.total0 > 0 THEN w.calls0 / w.total0 END AS baseline_share,
                 (w.calls + w.calls0) / (w.total_calls + w.total0) AS pooled,
                 coalesce(s.first_seen, (SELECT min(day) FROM per WHERE per.k = w.k)) AS first_seen
          FROM win w LEFT JOIN seen s USING (k)),
z AS (SELECT *, CASE WHEN total0 = 0 THEN NULL WHEN pooled * (1 - pooled) <= 0 THEN 0.0
                     ELSE (share - baseline_share) / sqrt(pooled * (1 - pooled) * (1 / total_calls + 1 / total0))
                END AS z
      FROM stats)
SELECT k AS {key}, day, n AS {count}, calls, total_calls, share, baseline_share, z,
       coalesce(k::VARCHAR != '-1' AND (
           (calls >= {MIN_CALLS} AND z >= {Z_THRESHOLD})
           OR ({new_in} >= {NEW_MIN_MENTIONS} AND first_seen > (SELECT min(day) FROM days)
               AND day - first_seen BETWEEN 0 AND {NEW_DAYS - 1})), false) AS emerging
FROM z
"""


# per signal per day: calls with the signal and their share of the day's calls (zero days included)
SIGNAL_TRENDS = trend_sql("signal_id", "hits", "SELECT signal_id, call_id, call_date FROM signal_hits",
                          "SELECT call_id, call_date FROM calls",
                          "SELECT signal_id, min(call_date) AS first_seen FROM signal_hits GROUP BY 1", new_in="calls")

# per topic per day: the share of the day's calls that discovery looked at (outliers included)
TOPIC_TRENDS = trend_sql("topic_id", "utterances", "SELECT topic_id, call_id, call_date FROM utterance_topics",
                         "SELECT call_id, call_date FROM utterance_topics",
                         "SELECT topic_id, first_seen FROM topics")

# The scorecards of the rubric versions configured now (`rubrics.current`): older versions stay in
# `scorecards` for comparison but do not count twice, and a rollback or a renamed rubric leaves none current.
CURRENT = "SEMI JOIN (SELECT rubric_id, rubric_version FROM rubrics WHERE current) USING (rubric_id, rubric_version)"
CURRENT_SCORECARDS = f"""
SELECT * FROM scorecards {CURRENT}
"""

# current_scorecards of flagged calls only (once a window over every version of every call's was most of the work)
COACHING_QUEUE = f"""
WITH flagged AS (SELECT DISTINCT call_id FROM flags),
score AS (SELECT call_id, min(pct) AS score_pct, bool_or(auto_failed) AS auto_failed
          FROM (SELECT * FROM scorecards SEMI JOIN flagged USING (call_id) {CURRENT})
          GROUP BY 1),
ranked AS (SELECT *, CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END AS rank FROM flags),
-- a call's flags sorted as one small list, not by two ordered aggregates (each sorts every group)
per_call AS (SELECT call_id, min(rank) AS rank, count(*) AS n_flags,
                    list_sort(list({{'rank': rank, 'flag_id': flag_id, 'reason': reason}})) AS sorted
             FROM ranked GROUP BY 1)
SELECT c.call_id, c.call_date, c.started_at, c.agent_id, c.queue, c.direction, c.duration_s,
       ['high', 'medium', 'low'][p.rank + 1] AS severity, list_transform(p.sorted, lambda f: f.flag_id) AS flags,
       p.n_flags, array_to_string(list_transform(p.sorted, lambda f: f.reason), '; ') AS reasons,
       s.score_pct, coalesce(s.auto_failed, false) AS auto_failed
FROM per_call p JOIN calls c USING (call_id) LEFT JOIN score s USING (call_id)
ORDER BY c.call_date DESC, p.rank, p.n_flags DESC, s.score_pct NULLS LAST, c.started_at DESC, c.call_id
"""

# Per rubric: a call two rubrics score has two scorecards, and a mean over both would mix two scales of points
AGENT_SCORES = """
WITH cards AS (SELECT s.*, coalesce(c.agent_id, '(unknown)') AS agent_id,
                      date_trunc('week', s.call_date)::DATE AS week
               FROM current_scorecards s JOIN calls c USING (call_id)),
weekly AS (SELECT agent_id, week, rubric_id, count(*) AS calls, round(avg(pct), 1) AS mean_score,
                  round(avg(passed::INT), 3) AS pass_rate, sum(auto_failed::INT)::BIGINT AS auto_fails
           FROM cards GROUP BY 1, 2, 3),
fails AS (SELECT k.agent_id, k.week, k.rubric_id, i.criterion_id, count(*) AS n, sum(i.max_points) AS lost
          FROM scorecard_items i JOIN cards k USING (call_id, rubric_id, rubric_version)
          WHERE i.result = 'fail' GROUP BY 1, 2, 3, 4),
-- of criteria failed as often, the points they cost first: a missed disclosure (15) before a missed name (5)
top AS (SELECT agent_id, week, rubric_id,
               list(criterion_id ORDER BY n DESC, lost DESC, criterion_id)[1:3] AS most_failed
        FROM fails GROUP BY 1, 2, 3)
SELECT w.agent_id, w.week, w.rubric_id, w.calls, w.mean_score, w.pass_rate, w.auto_fails,
       coalesce(t.most_failed, []::VARCHAR[]) AS most_failed
FROM weekly w LEFT JOIN top t USING (agent_id, week, rubric_id)
ORDER BY w.week DESC, w.rubric_id, w.mean_score, w.agent_id
"""

# The topics of the model fitted last; in a store written before `current` was recorded, the newest version's
CURRENT_TOPICS = """
SELECT * EXCLUDE (current) FROM topics
WHERE coalesce(current, model_version = (SELECT max(model_version) FROM topics))
"""

VIEWS = {
    "signal_trends": SIGNAL_TRENDS,
    "topic_trends": TOPIC_TRENDS,
    "current_scorecards": CURRENT_SCORECARDS,
    "current_topics": CURRENT_TOPICS,
    # flagged calls, one row each: newest day first, most severe first within a day
    "coaching_queue": COACHING_QUEUE,
    # per agent per week: calls, mean score, pass rate, auto-fails and the criteria failed most
    "agent_scores": AGENT_SCORES,
}
