-- GC storms per instance over each window [start, end) of `window_starts` / `window_ends`, from gctrace
-- cycles (gc_events).
-- The query also looks back sustained_windows - 1 windows: a storm is a condition that held in every one of
-- the last sustained_windows windows, so a single hot window never pages. Definitions: docs/detections.md.
INSERT INTO {{db}}.gc_storms
(
    service, instance, window_start, window_end, storm, severity, kind, hot, hot_windows, reason,
    gc_count, gc_per_s, gc_cpu_fraction, assist_share, assist_of_gc, stw_p50_ms, stw_p99_ms, stw_max_ms,
    heap_live_mb, heap_goal_mb, live_vs_goal, goal_vs_live, heap_live_growth, heap_live_rho, forced_cycles,
    procs, memory_limit_mb, gogc, run_id, computed_at
)
WITH
-- The windows this run computes, each [start, end) with its own look-back: the scheduler passes one, a
-- backtest every window of a clock step at once (one statement instead of one per window; same rows).
-- Rows are read once within the outer bounds and repeated for each window that holds them (arrayJoin):
-- no join, so one window costs what it did before lists.
{window_starts:Array(DateTime64(3, 'UTC'))} AS starts,
{window_ends:Array(DateTime64(3, 'UTC'))} AS ends,
arrayMap(s -> s - toIntervalSecond({window_seconds:UInt32} * ({sustained_windows:UInt32} - 1)), starts) AS span_froms,
-- Each cycle once for every window whose span (the window and the sustained_windows - 1 before it) holds it.
span_cycles AS
(
    SELECT *,
           arrayJoin(arrayFilter(k -> ts >= span_froms[k] AND ts < ends[k], arrayEnumerate(starts))) AS wi,
           starts[wi] AS ws, ends[wi] AS we
    FROM {{db}}.gc_events
    -- bounds without lambdas, so the engine folds them into the primary key range
    WHERE ts >= arrayMin(starts) - toIntervalSecond({window_seconds:UInt32} * ({sustained_windows:UInt32} - 1))
      AND ts < arrayMax(ends)
),
-- The current process of each instance: start estimated as ts - uptime, latest wins (restart_jitter_seconds
-- absorbs the delivery delay in that estimate).
boots AS
(
    SELECT ws, service, instance, max(toUnixTimestamp64Milli(ts) / 1000.0 - since_start_s) AS boot
    FROM span_cycles
    GROUP BY ws, service, instance
),
current_cycles AS
(
    SELECT c.*
    FROM span_cycles AS c
    INNER JOIN boots AS bo USING (ws, service, instance)
    WHERE toUnixTimestamp64Milli(c.ts) / 1000.0 - c.since_start_s >= bo.boot - {restart_jitter_seconds:Float64}
),
-- One row per instance and window; b = 0 is the window being computed, -1 the one before it, and so on.
per_window AS
(
    SELECT
        ws, we, service, instance,
        toInt64(floor(dateDiff('millisecond', ws, ts)
                      / (1000 * {window_seconds:UInt32}))) AS b,
        count() AS n,
        countIf(forced = 1) AS forced_n,
        max(procs) AS p,
        sum(cpu_assist_ms + cpu_background_ms + cpu_sweep_term_ms + cpu_mark_term_ms) AS gc_cpu_ms,
        sum(cpu_assist_ms) AS assist_ms,
        quantilesExactArray(0.5, 0.99)([stw_sweep_term_ms, stw_mark_term_ms]) AS stw_q,
        max(greatest(stw_sweep_term_ms, stw_mark_term_ms)) AS stw_max,
        avgIf(toFloat64(heap_live_mb) / heap_goal_mb, heap_goal_mb > 0) AS live_vs_goal_w,
        avgIf(toFloat64(heap_goal_mb) / heap_live_mb, heap_live_mb > 0 AND heap_goal_mb IS NOT NULL) AS goal_vs_live_w,
        avg(toFloat64(heap_live_mb)) AS live_avg,
        avgIf(toFloat64(heap_live_mb), since_start_s >= {leak_warmup_seconds:UInt32}) AS live_warm,
        avgIf(toFloat64(heap_goal_mb), heap_goal_mb IS NOT NULL) AS goal_avg,
        maxIf(toFloat64(heap_goal_mb), heap_goal_mb IS NOT NULL) AS goal_max,
        -- The window being computed may be shorter than window_seconds (a manual run that ends at now).
        if(b = 0,
           dateDiff('millisecond', ws, we),
           1000 * {window_seconds:UInt32}) / 1000.0 AS wall_s,
        n / wall_s AS rate,
        gc_cpu_ms / (1000.0 * wall_s * greatest(p, 1)) AS cpu_frac,
        assist_ms / (1000.0 * wall_s * greatest(p, 1)) AS assist_frac
    FROM current_cycles
    GROUP BY ws, we, service, instance, b
),
-- Live-heap trend over the same span, on the raw cycles (a leak behind the storm shows as a rising floor).
heap_trend AS
(
    SELECT ws, service, instance,
           rankCorr(toFloat64(toUnixTimestamp64Micro(ts)), toFloat64(heap_live_mb)) AS rho
    FROM current_cycles
    WHERE since_start_s >= {leak_warmup_seconds:UInt32}
    GROUP BY ws, service, instance
    HAVING count() >= 3
),
-- The leak-trend job's latest heap verdict for the instance (a slow leak shows over hours, not in this span).
heap_leak AS
(
    SELECT starts[wi] AS ws, service, instance, argMax(leaking, window_end) AS leaking_now
    FROM {{db}}.leak_trends FINAL
    ARRAY JOIN arrayFilter(k -> window_end > ends[k] - INTERVAL 1 HOUR AND window_end <= ends[k],
                           arrayEnumerate(starts)) AS wi
    WHERE signal = 'heap_live'
      AND window_end > arrayMin(ends) - INTERVAL 1 HOUR AND window_end <= arrayMax(ends)
    GROUP BY ws, service, instance
),
-- GOMEMLIMIT and GOGC as the runtime reports them (runtime/metrics via OTel or Prometheus), when it does.
knobs AS
(
    SELECT starts[wi] AS ws, service, instance,
           argMaxIf(value, ts, metric = 'go.memory.limit') AS limit_bytes,
           countIf(metric = 'go.memory.limit') AS limit_n,
           argMaxIf(value, ts, metric = 'go.config.gogc') AS gogc_value,
           countIf(metric = 'go.config.gogc') AS gogc_n
    FROM {{db}}.runtime_metrics
    ARRAY JOIN arrayFilter(k -> ts >= ends[k] - INTERVAL 1 HOUR AND ts < ends[k], arrayEnumerate(starts)) AS wi
    WHERE metric IN ('go.memory.limit', 'go.config.gogc')
      AND ts >= arrayMin(ends) - INTERVAL 1 HOUR AND ts < arrayMax(ends)
    GROUP BY ws, service, instance
),
flagged AS
(
    SELECT
        w.*,
        if(k.limit_n > 0 AND k.limit_bytes > 0 AND k.limit_bytes < 1e18, k.limit_bytes / 1048576, NULL) AS limit_mb,
        if(k.gogc_n > 0, k.gogc_value, NULL) AS gogc_v,
        -- The memory limit, not GOGC, sets the goal: the goal reaches the limit, the live heap fills the goal,
        -- GOGC is off, or the goal is well under what GOGC alone would allow.
        limit_mb IS NOT NULL
            AND (goal_max >= {squeeze_goal_vs_limit:Float64} * limit_mb
                 OR live_vs_goal_w >= {squeeze_live_vs_goal:Float64}
                 OR (gogc_v IS NOT NULL AND (gogc_v < 0 OR goal_vs_live_w < 0.9 * (1 + gogc_v / 100))))
            AS limit_paced,
        gogc_v IS NOT NULL AND gogc_v > 0 AND gogc_v <= {tiny_gogc_max:Float64} AS gogc_tiny,
        n >= {gc_min_cycles:UInt32}
            AND (cpu_frac >= {gc_cpu_warn:Float64}
                 OR assist_frac >= {assist_share_warn:Float64}
                 -- back-to-back cycles with no headroom left between live heap and goal
                 OR (rate >= {gc_rate_warn_per_s:Float64}
                     AND (live_vs_goal_w >= {squeeze_live_vs_goal:Float64} OR limit_paced OR gogc_tiny)))
            AS is_hot
    FROM per_window AS w
    LEFT JOIN knobs AS k USING (ws, service, instance)
),
per_instance AS
(
    SELECT
        ws, we, service, instance,
        countIf(is_hot AND b > -toInt64({sustained_windows:UInt32})) AS hot_windows,
        anyIf(is_hot, b = 0) AS hot_now,
        anyIf(n, b = 0) AS n0,
        anyIf(rate, b = 0) AS rate0,
        anyIf(cpu_frac, b = 0) AS cpu0,
        anyIf(assist_frac, b = 0) AS assist0,
        anyIf(if(gc_cpu_ms > 0, assist_ms / gc_cpu_ms, 0), b = 0) AS assist_of_gc0,
        anyIf(stw_q[1], b = 0) AS stw_p50,
        anyIf(stw_q[2], b = 0) AS stw_p99,
        anyIf(stw_max, b = 0) AS stw_max0,
        anyIf(live_avg, b = 0) AS live0,
        anyIf(goal_avg, b = 0) AS goal0,
        anyIf(goal_max, b = 0) AS goal_max0,
        anyIf(live_vs_goal_w, b = 0) AS lvg0,
        anyIf(goal_vs_live_w, b = 0) AS gvl0,
        anyIf(forced_n, b = 0) AS forced0,
        anyIf(p, b = 0) AS procs0,
        anyIf(limit_mb, b = 0) AS limit_mb,
        anyIf(gogc_v, b = 0) AS gogc_v,
        anyIf(limit_paced, b = 0) AS limit_paced0,
        anyIf(gogc_tiny, b = 0) AS gogc_tiny0,
        -- growth from the oldest window in the span to this one
        argMinIf(live_warm, b, NOT isNaN(live_warm)) AS live_first,
        anyIf(live_warm, b = 0) AS live_last,
        if(live_first > 0 AND NOT isNaN(live_last), (live_last - live_first) / live_first, 0) AS live_growth
    FROM flagged
    GROUP BY ws, we, service, instance
    HAVING countIf(b = 0) > 0
),
classified AS
(
    SELECT
        ws, we, service, instance, hot_windows, hot_now, n0, rate0, cpu0, assist0, assist_of_gc0, stw_p50, stw_p99,
        stw_max0, live0, goal0, goal_max0, lvg0, gvl0, forced0, procs0, live_growth, limit_mb, gogc_v,
        ifNull(ht.rho, 0) AS rho,
        ifNull(hl.leaking_now, 0) = 1 AS heap_leaking,
        hot_windows >= {sustained_windows:UInt32} AND hot_now AS is_storm,
        -- GOGC reported tiny, or (no limit known) the goal sits right on top of the live heap
        gogc_tiny0 OR (limit_mb IS NULL AND gvl0 > 0 AND gvl0 <= {tiny_gogc_goal_ratio:Float64}) AS is_tiny_gogc,
        (live_growth >= {leak_min_relative_growth:Float64} AND rho >= {leak_spearman_min:Float64})
            OR ifNull(hl.leaking_now, 0) = 1 AS is_leak_driven,
        limit_paced0 AS is_squeeze
    FROM per_instance AS pi
    LEFT JOIN heap_trend AS ht USING (ws, service, instance)
    LEFT JOIN heap_leak AS hl USING (ws, service, instance)
)
SELECT
    service, instance, ws, we,
    is_storm,
    multiIf(NOT is_storm, 'none',
            cpu0 >= {gc_cpu_critical:Float64} OR stw_p99 >= {stw_p99_critical_ms:Float64}, 'critical',
            'warning') AS severity,
    -- A leak behind the storm is named first (fixing GC settings will not help); then an explicit tiny GOGC;
    -- then a limit that paces the GC; otherwise the program allocates faster than the GC keeps up with.
    multiIf(NOT is_storm, '',
            is_leak_driven, 'leak_driven',
            is_tiny_gogc AND NOT is_squeeze, 'misconfiguration',
            is_squeeze, 'limit_squeeze',
            'allocation') AS kind,
    hot_now, hot_windows,
    arrayStringConcat(arrayFilter(x -> x != '', [
        if(cpu0 >= {gc_cpu_warn:Float64}, format('GC CPU {}% of {} P', toString(round(100 * cpu0, 1)), toString(procs0)), ''),
        if(assist0 >= {assist_share_warn:Float64}, format('assists {}% of CPU', toString(round(100 * assist0, 1))), ''),
        if(rate0 >= {gc_rate_warn_per_s:Float64}, format('{} GC/s', toString(round(rate0, 1))), ''),
        if(lvg0 >= {squeeze_live_vs_goal:Float64}, format('live heap {}% of goal', toString(round(100 * lvg0))), ''),
        if(is_squeeze, format('goal {} MiB paced by limit {} MiB{}', toString(goal_max0),
                              toString(round(assumeNotNull(limit_mb))), if(gogc_v < 0, ' (GOGC=off)', '')), ''),
        if(is_tiny_gogc, if(gogc_v IS NOT NULL, format('GOGC={}', toString(gogc_v)),
                            format('goal only {}x live', toString(round(gvl0, 2)))), ''),
        if(is_leak_driven, if(heap_leaking AND live_growth < {leak_min_relative_growth:Float64},
                              'live heap leaking (leak_trends)',
                              format('live heap +{}% (rho {})', toString(round(100 * live_growth)), toString(round(rho, 2)))), ''),
        if(stw_p99 >= {stw_p99_warn_ms:Float64}, format('STW p99 {} ms', toString(round(stw_p99, 2))), ''),
        if(hot_now AND NOT is_storm,
           format('hot in {} of {} windows', toString(hot_windows), toString({sustained_windows:UInt32})), '')
    ]), '; ') AS reason,
    n0, rate0, cpu0, assist0, assist_of_gc0, stw_p50, stw_p99, stw_max0,
    live0, goal0, lvg0, gvl0, live_growth, rho, forced0, procs0,
    limit_mb, gogc_v,
    {run_id:String}, now64(3)
FROM classified
