-- 99th percentile of stop-the-world pauses (sweep termination and mark termination) from gctrace.
SELECT $__timeInterval(ts) AS time, instance,
       quantile(0.99)(arrayJoin([stw_sweep_term_ms, stw_mark_term_ms])) AS stw_p99_ms
FROM gc_events
WHERE $__timeFilter(ts) AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
GROUP BY time, instance
ORDER BY time
