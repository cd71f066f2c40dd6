SELECT toStartOfMinute(ts) AS minute, min(value) AS floor, max(value) AS peak, any(process_start) AS process_start
FROM {{db}}.runtime_metrics
WHERE service = {service:String} AND instance = {instance:String} AND metric = 'go.goroutine.count'
  AND ts >= {since:DateTime64(3, 'UTC')}
GROUP BY minute
ORDER BY minute
