-- Instances in a sustained GC storm, per service, over time.
SELECT $__timeInterval(window_start) AS time, service, uniqExactIf(instance, storm = 1) AS storm_instances
FROM gc_storms FINAL
WHERE $__timeFilter(window_start) AND service IN (${service:singlequote})
GROUP BY time, service
ORDER BY time
