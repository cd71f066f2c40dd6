-- Storm verdicts in the time range, latest first.
SELECT window_start, service, instance, severity, kind, reason,
       round(gc_cpu_fraction * 100, 1) AS gc_cpu_pct, round(gc_per_s, 2) AS gc_per_s,
       round(stw_p99_ms, 2) AS stw_p99_ms, round(live_vs_goal, 2) AS live_vs_goal
FROM gc_storms FINAL
WHERE $__timeFilter(window_start) AND storm = 1
  AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
ORDER BY window_start DESC
LIMIT 500
