-- The GC-storm job's read of gc_events (sql/jobs/gc_storms.sql, per_window), over every row of a table copy:
-- per instance and minute the sums, the quantiles and maxima the job computes, so the figure is what a codec
-- costs the readers (every column the job reads is decompressed once) without the job's joins around it.
SELECT count() AS windows, sum(n) AS rows
FROM
(
    SELECT
        service, instance, toStartOfMinute(ts) AS w,
        count() AS n,
        countIf(forced = 1) AS forced_n,
        max(procs) AS p,
        max(toUnixTimestamp64Milli(ts) / 1000.0 - since_start_s) AS boot,
        sum(cpu_assist_ms + cpu_background_ms + cpu_sweep_term_ms + cpu_mark_term_ms) AS gc_cpu_ms,
        sum(cpu_assist_ms) AS assist_ms,
        quantilesExactArray(0.5, 0.99)([stw_sweep_term_ms, stw_mark_term_ms]) AS stw_q,
        max(greatest(stw_sweep_term_ms, stw_mark_term_ms)) AS stw_max,
        avgIf(toFloat64(heap_live_mb) / heap_goal_mb, heap_goal_mb > 0) AS live_vs_goal,
        avg(toFloat64(heap_live_mb)) AS live_avg,
        maxIf(toFloat64(heap_goal_mb), heap_goal_mb IS NOT NULL) AS goal_max
    FROM {db:Identifier}.{table:Identifier}
    GROUP BY service, instance, w
)
