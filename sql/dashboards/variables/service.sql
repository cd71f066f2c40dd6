-- Services that reported anything in the dashboard's time range.
SELECT DISTINCT service FROM
(
    SELECT service FROM gc_events WHERE $__timeFilter(ts)
    UNION ALL SELECT service FROM runtime_metrics WHERE $__timeFilter(ts)
    UNION ALL SELECT service FROM cancel_events WHERE $__timeFilter(cancel_at)
    UNION ALL SELECT child_service AS service FROM cancel_gaps WHERE $__timeFilter(bucket)
)
ORDER BY service
