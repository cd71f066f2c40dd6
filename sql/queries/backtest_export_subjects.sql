-- Backtest export: the subjects an exported time range holds, one per detection, to be labelled by the user.
SELECT detection, service, instance, signal
FROM
(
    SELECT 'gc_storms' AS detection, service, instance, '' AS signal
    FROM {{db}}.gc_events
    WHERE service IN {services:Array(String)} AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}
    GROUP BY service, instance
    UNION ALL
    SELECT 'leak_trends' AS detection, service, instance, 'heap_live' AS signal
    FROM {{db}}.gc_events
    WHERE service IN {services:Array(String)} AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}
    GROUP BY service, instance
    UNION ALL
    SELECT 'leak_trends' AS detection, service, instance, 'goroutines' AS signal
    FROM {{db}}.runtime_metrics
    WHERE service IN {services:Array(String)} AND metric = 'go.goroutine.count'
      AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}
    GROUP BY service, instance
)
ORDER BY detection, service, instance, signal
