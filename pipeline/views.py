"""Analyst views in the DuckDB file, computed by DuckDB over the stored tables (never in pandas)."""

SIGNAL_TRENDS = """
WITH days AS (SELECT call_date AS day, count(*) AS total_calls FROM calls GROUP BY 1),
hits AS (SELECT signal_id, call_date AS day, count(*) AS hits, count(DISTINCT call_id) AS calls
         FROM signal_hits GROUP BY 1, 2)
SELECT s.signal_id, d.day, coalesce(h.hits, 0) AS hits, coalesce(h.calls, 0) AS calls, d.total_calls,
       coalesce(h.calls, 0) / d.total_calls AS share
FROM (SELECT DISTINCT signal_id FROM signal_hits) s CROSS JOIN days d
LEFT JOIN hits h ON h.signal_id = s.signal_id AND h.day = d.day
"""

# The newest version of each rubric a call was scored with: older versions stay in `scorecards`
# for comparison but do not count twice.
CURRENT_SCORECARDS = """
SELECT * FROM scorecards
QUALIFY row_number() OVER (PARTITION BY call_id, rubric_id ORDER BY rubric_version DESC) = 1
"""

COACHING_QUEUE = """
WITH score AS (SELECT call_id, min(pct) AS score_pct, bool_or(auto_failed) AS auto_failed
               FROM current_scorecards GROUP BY 1),
ranked AS (SELECT *, CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END AS rank FROM flags),
per_call AS (SELECT call_id, min(rank) AS rank, count(*) AS n_flags,
                    list(flag_id ORDER BY rank, flag_id) AS flags,
                    string_agg(reason, '; ' ORDER BY rank, flag_id) AS reasons
             FROM ranked GROUP BY 1)
SELECT c.call_id, c.call_date, c.started_at, c.agent_id, c.queue, c.direction, c.duration_s,
       ['high', 'medium', 'low'][p.rank + 1] AS severity, p.flags, p.n_flags, p.reasons,
       s.score_pct, coalesce(s.auto_failed, false) AS auto_failed
FROM per_call p JOIN calls c USING (call_id) LEFT JOIN score s USING (call_id)
ORDER BY c.call_date DESC, p.rank, p.n_flags DESC, s.score_pct NULLS LAST, c.started_at DESC, c.call_id
"""

AGENT_SCORES = """
WITH cards AS (SELECT s.*, coalesce(c.agent_id, '(unknown)') AS agent_id,
                      date_trunc('week', s.call_date)::DATE AS week
               FROM current_scorecards s JOIN calls c USING (call_id)),
weekly AS (SELECT agent_id, week, count(DISTINCT call_id) AS calls, round(avg(pct), 1) AS mean_score,
                  round(avg(passed::INT), 3) AS pass_rate, sum(auto_failed::INT)::BIGINT AS auto_fails
           FROM cards GROUP BY 1, 2),
fails AS (SELECT k.agent_id, k.week, i.criterion_id, count(*) AS n
          FROM scorecard_items i JOIN cards k USING (call_id, rubric_id, rubric_version)
          WHERE i.result = 'fail' GROUP BY 1, 2, 3),
top AS (SELECT agent_id, week, list(criterion_id ORDER BY n DESC, criterion_id)[1:3] AS most_failed
        FROM fails GROUP BY 1, 2)
SELECT w.agent_id, w.week, w.calls, w.mean_score, w.pass_rate, w.auto_fails,
       coalesce(t.most_failed, []::VARCHAR[]) AS most_failed
FROM weekly w LEFT JOIN top t USING (agent_id, week)
ORDER BY w.week DESC, w.mean_score, w.agent_id
"""

VIEWS = {
    # per signal per day: calls with the signal and their share of the day's calls (zero days included)
    "signal_trends": SIGNAL_TRENDS,
    "current_scorecards": CURRENT_SCORECARDS,
    # flagged calls, one row each: newest day first, most severe first within a day
    "coaching_queue": COACHING_QUEUE,
    # per agent per week: calls, mean score, pass rate, auto-fails and the criteria failed most
    "agent_scores": AGENT_SCORES,
}
