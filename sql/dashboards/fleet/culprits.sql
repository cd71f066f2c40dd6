-- The three culprits per service over the time range: instances in a GC storm, instances whose goroutines
-- or live heap trend upward, and call edges whose children outlive cancellation.
WITH
storms AS
(
    SELECT service, uniqExactIf(instance, storm = 1) AS storm_instances,
           max(gc_cpu_fraction) AS max_gc_cpu_fraction, max(stw_p99_ms) AS max_stw_p99_ms
    FROM gc_storms FINAL
    WHERE $__timeFilter(window_start) AND service IN (${service:singlequote})
    GROUP BY service
),
leaks AS
(
    SELECT service, uniqExactIf(instance, leaking = 1) AS leaking_instances,
           maxIf(sen_slope_per_hour, leaking = 1 AND signal = 'goroutines') AS max_goroutines_per_hour
    FROM leak_trends FINAL
    WHERE $__timeFilter(window_start) AND service IN (${service:singlequote})
    GROUP BY service
),
gaps AS
(
    SELECT child_service AS service, uniqExactIf((parent_service, parent_operation, child_operation), flagged = 1)
           AS gap_edges, sum(overruns) AS overruns, sum(wasted_child_ms) / 1000 AS wasted_child_s
    FROM cancel_gaps FINAL
    WHERE $__timeFilter(bucket) AND child_service IN (${service:singlequote})
    GROUP BY service
),
services AS
(
    SELECT service FROM storms UNION DISTINCT SELECT service FROM leaks UNION DISTINCT SELECT service FROM gaps
)
SELECT
    services.service AS service,
    storms.storm_instances AS gc_storm_instances,
    round(storms.max_gc_cpu_fraction * 100, 1) AS max_gc_cpu_pct,
    round(storms.max_stw_p99_ms, 2) AS max_stw_p99_ms,
    leaks.leaking_instances AS leaking_instances,
    round(leaks.max_goroutines_per_hour, 1) AS max_goroutines_per_hour,
    gaps.gap_edges AS cancel_gap_edges,
    gaps.overruns AS cancel_overruns,
    round(gaps.wasted_child_s, 1) AS wasted_child_s
FROM services
LEFT JOIN storms ON storms.service = services.service
LEFT JOIN leaks ON leaks.service = services.service
LEFT JOIN gaps ON gaps.service = services.service
ORDER BY gc_storm_instances + leaking_instances + cancel_gap_edges DESC, service
