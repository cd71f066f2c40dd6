-- Completed GC cycles per second.
SELECT $__timeInterval(ts) AS time, instance, count() / $__interval_s AS gc_per_s
FROM gc_events
WHERE $__timeFilter(ts) AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
GROUP BY time, instance
ORDER BY time
