-- Instances of the selected services in the dashboard's time range.
SELECT DISTINCT instance FROM
(
    SELECT service, instance FROM gc_events WHERE $__timeFilter(ts)
    UNION ALL SELECT service, instance FROM runtime_metrics WHERE $__timeFilter(ts)
)
WHERE service IN (${service:singlequote})
ORDER BY instance
