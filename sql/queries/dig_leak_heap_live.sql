SELECT toStartOfMinute(ts) AS minute, min(heap_live_mb) AS live_floor_mb, max(heap_goal_mb) AS goal_mb,
       count() AS cycles, max(since_start_s) AS uptime_s
FROM {{db}}.gc_events
WHERE service = {service:String} AND instance = {instance:String} AND ts >= {since:DateTime64(3, 'UTC')}
GROUP BY minute
ORDER BY minute
