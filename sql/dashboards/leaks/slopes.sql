-- Theil-Sen slope of the goroutine floor (goroutines per hour) at each evaluation.
SELECT $__timeInterval(window_end) AS time, instance, max(sen_slope_per_hour) AS goroutines_per_hour
FROM leak_trends FINAL
WHERE $__timeFilter(window_end) AND signal = 'goroutines'
  AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
GROUP BY time, instance
ORDER BY time
