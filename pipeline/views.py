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

VIEWS = {
    # per signal per day: calls with the signal and their share of the day's calls (zero days included)
    "signal_trends": SIGNAL_TRENDS,
}
