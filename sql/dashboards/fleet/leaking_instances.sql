-- Instances with a leak verdict (goroutines or live heap), per service, over time.
SELECT $__timeInterval(window_end) AS time, service, uniqExactIf(instance, leaking = 1) AS leaking_instances
FROM leak_trends FINAL
WHERE $__timeFilter(window_end) AND service IN (${service:singlequote})
GROUP BY time, service
ORDER BY time
