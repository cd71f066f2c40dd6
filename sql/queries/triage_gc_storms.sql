-- Triage: instances in a sustained GC storm since {since}, worst first (critical, still ongoing, most GC CPU).
-- Each row is the instance's latest storm window, with how long the storm has lasted in windows.
WITH latest AS
(
    SELECT service, instance, max(window_end) AS latest_end
    FROM {{db}}.gc_storms
    WHERE window_start >= {since:DateTime64(3, 'UTC')}
      AND ({service:String} = '' OR service = {service:String})
    GROUP BY service, instance
)
SELECT
    service, instance,
    argMax(severity, window_start) AS severity,
    argMax(kind, window_start) AS kind,
    argMax(reason, window_start) AS reason,
    count() AS storm_windows,
    min(window_start) AS first_seen,
    max(window_end) AS last_seen,
    max(window_end) >= any(latest.latest_end) AS ongoing,
    argMax(gc_count, window_start) AS gc_count,
    argMax(gc_per_s, window_start) AS gc_per_s,
    argMax(gc_cpu_fraction, window_start) AS gc_cpu_fraction,
    argMax(assist_share, window_start) AS assist_share,
    argMax(stw_p50_ms, window_start) AS stw_p50_ms,
    argMax(stw_p99_ms, window_start) AS stw_p99_ms,
    argMax(stw_max_ms, window_start) AS stw_max_ms,
    argMax(heap_live_mb, window_start) AS heap_live_mb,
    argMax(heap_goal_mb, window_start) AS heap_goal_mb,
    argMax(forced_cycles, window_start) AS forced_cycles,
    argMax(procs, window_start) AS procs,
    argMax(memory_limit_mb, window_start) AS memory_limit_mb,
    argMax(gogc, window_start) AS gogc
FROM {{db}}.gc_storms AS t FINAL
INNER JOIN latest USING (service, instance)
WHERE storm = 1
  AND window_start >= {since:DateTime64(3, 'UTC')}
  AND ({service:String} = '' OR service = {service:String})
GROUP BY service, instance
ORDER BY severity = 'critical' DESC, ongoing DESC, gc_cpu_fraction DESC
LIMIT {limit:UInt32}
