-- Goroutine count per instance (minimum per interval: the floor a leak lifts).
SELECT $__timeInterval(ts) AS time, instance, min(value) AS goroutines
FROM runtime_metrics
WHERE $__timeFilter(ts) AND metric = 'go.goroutine.count'
  AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
GROUP BY time, instance
ORDER BY time
