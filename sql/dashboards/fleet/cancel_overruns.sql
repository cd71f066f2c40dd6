-- Children that kept running past the grace after a cancellation, per child service, over time.
SELECT $__timeInterval(bucket) AS time, child_service AS service, sum(overruns) AS overruns
FROM cancel_gaps FINAL
WHERE $__timeFilter(bucket) AND child_service IN (${service:singlequote})
GROUP BY time, service
ORDER BY time
