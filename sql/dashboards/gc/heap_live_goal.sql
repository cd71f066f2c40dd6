-- Live heap after mark against the pacer's goal (MB); live close to goal every cycle means GC runs back to back.
SELECT $__timeInterval(ts) AS time, instance, avg(heap_live_mb) AS heap_live_mb, avg(heap_goal_mb) AS heap_goal_mb
FROM gc_events
WHERE $__timeFilter(ts) AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
GROUP BY time, instance
ORDER BY time
