-- Leak trends per instance, evaluated at the end of each window [start, end) of `window_starts` /
-- `window_ends` over the lookback before it.
-- Signals: goroutines (runtime_metrics go.goroutine.count) and heap_live (gctrace live heap after mark).
-- Method (docs/detections.md): bucket MINIMA (a leak raises the floor, load does not), only the current
-- process incarnation, warm-up dropped, then Mann-Kendall Z (Hamed-Rao variance correction for
-- autocorrelated floors), Spearman rho, Theil-Sen and OLS slopes. Two shape checks keep load from reading
-- as a leak: a straight line must fit the floors better than one step does (a deploy or a pool filling up
-- once is a step), and when the same process has history before the lookback (leak_history_seconds), the
-- floor must reach above everything it reached there (a daily load cycle returns to yesterday's level).
INSERT INTO {{db}}.leak_trends
(
    service, instance, signal, unit, window_start, window_end, leaking, severity, reason, segment_start,
    n_buckets, first_floor, last_floor, median_floor, sen_slope_per_hour, ols_slope_per_hour, relative_growth,
    mk_z, spearman_rho, limit_value, hours_to_limit, run_id, computed_at
)
WITH
-- The windows this run evaluates, each at its end over the look-back before it and seeing only the rows
-- received by its `as of` time: the scheduler passes one window and no limit; a backtest passes every clock
-- step of a replay at once, each as of its step (what had arrived then), which gives the rows one run per
-- step would have given.
{window_starts:Array(DateTime64(3, 'UTC'))} AS starts,
{window_ends:Array(DateTime64(3, 'UTC'))} AS ends,
{window_as_of:Array(DateTime64(3, 'UTC'))} AS as_ofs,
arrayMap(e -> e - toIntervalSecond(greatest({leak_lookback_seconds:UInt32}, {leak_history_seconds:UInt32})), ends)
    AS span_froms,
-- Live heap after mark, each cycle once for every window whose span holds it (read once, repeated by
-- arrayJoin: no join, so one window costs what it did before lists).
gc_rows AS
(
    SELECT service, instance, ts, since_start_s, heap_live_mb,
           arrayJoin(arrayFilter(k -> ts >= span_froms[k] AND ts < ends[k] AND received_at <= as_ofs[k],
                                 arrayEnumerate(starts))) AS wi,
           starts[wi] AS ws, ends[wi] AS we
    FROM {{db}}.gc_events
    -- bounds without lambdas, so the engine folds them into the primary key range
    WHERE ts >= arrayMin(ends) - toIntervalSecond(greatest({leak_lookback_seconds:UInt32}, {leak_history_seconds:UInt32}))
      AND ts < arrayMax(ends)
),
-- Goroutine counts, likewise.
rm_rows AS
(
    SELECT service, instance, ts, value, process_start,
           arrayJoin(arrayFilter(k -> ts >= span_froms[k] AND ts < ends[k] AND received_at <= as_ofs[k],
                                 arrayEnumerate(starts))) AS wi,
           starts[wi] AS ws, ends[wi] AS we
    FROM {{db}}.runtime_metrics
    WHERE metric = 'go.goroutine.count'
      AND ts >= arrayMin(ends) - toIntervalSecond(greatest({leak_lookback_seconds:UInt32}, {leak_history_seconds:UInt32}))
      AND ts < arrayMax(ends)
),
-- Current incarnation from gctrace: process start estimated as ts - uptime (exact when ts came from the
-- uptime; off by the delivery delay when ts is the arrival time), latest one wins.
gc_boot AS
(
    SELECT ws, service, instance, max(toUnixTimestamp64Milli(ts) / 1000.0 - since_start_s) AS boot
    FROM gc_rows
    GROUP BY ws, service, instance
),
-- Current incarnation from metrics: process.start_time when the producer sent it (0 = unknown).
rm_boot AS
(
    SELECT ws, service, instance, max(toUnixTimestamp64Milli(process_start) / 1000.0) AS boot
    FROM rm_rows
    GROUP BY ws, service, instance
),
buckets AS
(
    SELECT ws, we, service, instance, 'heap_live' AS signal,
           toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({leak_bucket_seconds:UInt32}))) AS b,
           min(toFloat64(heap_live_mb)) AS floor_v
    FROM gc_rows
    INNER JOIN gc_boot USING (ws, service, instance)
    WHERE since_start_s >= {leak_warmup_seconds:UInt32}
      AND toUnixTimestamp64Milli(ts) / 1000.0 - since_start_s >= boot - {restart_jitter_seconds:Float64}
    GROUP BY ws, we, service, instance, b
    UNION ALL
    SELECT ws, we, service, instance, 'goroutines' AS signal,
           toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({leak_bucket_seconds:UInt32}))) AS b,
           min(value) AS floor_v
    FROM rm_rows
    INNER JOIN rm_boot USING (ws, service, instance)
    WHERE boot = 0
       OR (toUnixTimestamp64Milli(process_start) / 1000.0 >= boot - {restart_jitter_seconds:Float64}
           AND toUnixTimestamp64Milli(ts) / 1000.0 >= boot + {leak_warmup_seconds:UInt32})
    GROUP BY ws, we, service, instance, b
),
series AS
(
    SELECT ws, we, service, instance, signal,
           arraySort(groupArray((b, floor_v))) AS pts,
           arrayMap(p -> toFloat64(p.1), pts) AS t_all,
           arrayMap(p -> p.2, pts) AS y_all,
           -- A floor collapsing to a fraction of the one before is a restart the metadata did not show
           -- (no process.start_time): keep only what follows it, minus the warm-up.
           arrayLastIndex((y, i) -> i > 1 AND y < {leak_restart_drop_fraction:Float64} * y_all[i - 1],
                          y_all, arrayEnumerate(y_all)) AS restart_at,
           if(restart_at > 0, t_all[restart_at] + {leak_warmup_seconds:UInt32}, 0) AS keep_from,
           toUnixTimestamp(we) - {leak_lookback_seconds:UInt32} AS lookback_from,
           arrayFilter(t -> t >= keep_from AND t >= lookback_from, t_all) AS t,
           arrayFilter((y, tt) -> tt >= keep_from AND tt >= lookback_from, y_all, t_all) AS y,
           length(y) AS n,
           -- the same process's floors before the lookback (empty: no history, the check is skipped)
           arrayFilter((y, tt) -> tt >= keep_from AND tt < lookback_from, y_all, t_all) AS history
    FROM buckets
    GROUP BY ws, we, service, instance, signal
    -- only series still reporting: the latest bucket reaches into this window
    HAVING t_all[-1] + {leak_bucket_seconds:UInt32} > toUnixTimestamp(ws)
),
stats AS
(
    SELECT ws, we, service, instance, signal, n, t, y,
           arrayMap(x -> (x - t[1]) / 3600.0, t) AS th,
           arraySum(arrayMap(i -> arraySum(arrayMap(j -> sign(y[j] - y[i]), range(i + 1, n + 1))), range(1, n))) AS mk_s,
           if(n < 2, 0, arrayReduce('quantileExact(0.5)', arrayFlatten(arrayMap(
               i -> arrayMap(j -> (y[j] - y[i]) / (th[j] - th[i]), range(i + 1, n + 1)), range(1, n))))) AS sen,
           -- Hamed-Rao: the autocorrelation of the ranks of the detrended floors inflates the variance of S
           -- (only lags significant at 5 %; never below the independent variance).
           arrayMap((v, x) -> v - sen * x, y, th) AS resid,
           arrayMap(v -> arrayCount(z -> z < v, resid) + (arrayCount(z -> z = v, resid) + 1) / 2.0, resid) AS rk,
           arrayMap(v -> v - (n + 1) / 2.0, rk) AS rc,
           arraySum(arrayMap(v -> v * v, rc)) AS rc_ss,
           arrayMap(k -> if(rc_ss = 0, 0, arraySum(arrayMap(i -> rc[i] * rc[i + k], range(1, n - k + 1))) / rc_ss),
                    range(1, n)) AS acf,
           greatest(1, 1 + if(n < 3, 0, 2.0 / (n * (n - 1) * (n - 2)) * arraySum(arrayMap(
               (r, k) -> if(abs(r) > 1.96 / sqrt(n), (n - k) * (n - k - 1) * (n - k - 2) * r, 0),
               acf, arrayEnumerate(acf))))) AS hr_ratio,
           n * (n - 1) * (2 * n + 5) / 18.0 * hr_ratio AS mk_var,
           if(n < 3, 0, if(mk_s > 0, (mk_s - 1) / sqrt(mk_var), if(mk_s < 0, (mk_s + 1) / sqrt(mk_var), 0))) AS mk_z,
           if(n < 3, (0, 0), arrayReduce('simpleLinearRegression', th, y)) AS fit,
           fit.1 AS ols,
           -- a line against the best single step (two flat levels, at least 2 floors each side)
           arraySum(arrayMap((v, x) -> pow(v - (fit.1 * x + fit.2), 2), y, th)) AS sse_line,
           arrayCumSum(y) AS cy,
           arrayCumSum(arrayMap(v -> v * v, y)) AS cy2,
           if(n < 4, inf, arrayMin(arrayMap(k -> cy2[n] - cy[k] * cy[k] / k - pow(cy[n] - cy[k], 2) / (n - k),
                                             range(2, n - 1)))) AS sse_step,
           if(empty(history), NULL, toNullable(arrayMax(history))) AS history_max,
           if(n < 3, 0, arrayReduce('rankCorr', th, y)) AS rho,
           arrayAvg(arraySlice(y, 1, 3)) AS first_floor,
           arrayAvg(arraySlice(y, -least(3, n))) AS last_floor,
           arrayReduce('quantileExact(0.5)', y) AS median_floor,
           (last_floor - first_floor) / greatest(first_floor, 1) AS growth
    FROM series
    WHERE n >= 3
),
heap_limit AS
(
    SELECT starts[wi] AS ws, service, instance, argMax(value, ts) / 1048576 AS limit_mb
    FROM {{db}}.runtime_metrics
    ARRAY JOIN arrayFilter(k -> ts >= ends[k] - toIntervalSecond({leak_lookback_seconds:UInt32}) AND ts < ends[k]
                                AND received_at <= as_ofs[k], arrayEnumerate(starts)) AS wi
    WHERE metric = 'go.memory.limit' AND value > 0 AND value < 1e18
      AND ts >= arrayMin(ends) - toIntervalSecond({leak_lookback_seconds:UInt32}) AND ts < arrayMax(ends)
    GROUP BY ws, service, instance
),
-- Goroutine profiles overrule the count where they exist (leak_sites ran first for this window): a rising
-- count whose growth sits at sites that all drain is load, not a leak.
site_verdicts AS
(
    SELECT window_start AS ws, service, instance, 'goroutines' AS signal,
           count() AS sites_evaluated, countIf(leaking = 1) AS sites_leaking
    FROM {{db}}.leak_sites FINAL
    WHERE window_start >= arrayMin(starts) AND window_start <= arrayMax(starts) AND has(starts, window_start)
    GROUP BY ws, service, instance
),
verdicts AS
(
    SELECT ws, we, service, instance, signal, n, th, mk_z, sen, ols, rho, first_floor, last_floor, median_floor, growth,
           sse_line, sse_step, history_max,
           t[1] AS seg_start,
           if(signal = 'goroutines', toNullable({leak_goroutine_ceiling:Float64}),
              if(hl.limit_mb > 0, toNullable(hl.limit_mb), NULL)) AS lim,
           if(lim IS NOT NULL AND sen > 0, greatest(lim - last_floor, 0) / sen, NULL) AS hours_left,
           n >= {leak_min_buckets:UInt32}
               AND mk_z >= {leak_mk_z:Float64}
               AND rho >= {leak_spearman_min:Float64}
               AND growth >= {leak_min_relative_growth:Float64}
               AND sse_line < sse_step
               AND (history_max IS NULL OR last_floor > (1 + {leak_new_high_margin:Float64}) * history_max)
               AND sen >= if(signal = 'goroutines', {leak_min_slope_per_hour:Float64},
                             {leak_heap_min_slope_mb_per_hour:Float64})
               AND NOT (sv.sites_evaluated > 0 AND sv.sites_leaking = 0) AS is_leaking
    FROM stats
    LEFT JOIN heap_limit AS hl USING (ws, service, instance)
    LEFT JOIN site_verdicts AS sv USING (ws, service, instance, signal)
)
SELECT
    service, instance, signal, if(signal = 'goroutines', 'goroutines', 'MiB'), ws, we,
    is_leaking,
    multiIf(NOT is_leaking, 'none',
            hours_left IS NOT NULL AND hours_left <= {leak_critical_hours:Float64}, 'critical', 'warning'),
    if(NOT is_leaking, '',
       format('{} floor {} -> {} (+{}%) over {} h, Sen slope {}/h, MK Z {}, rho {}{}',
              signal, toString(round(first_floor, 1)), toString(round(last_floor, 1)), toString(round(100 * growth)),
              toString(round(th[-1], 2)), toString(round(sen, 2)), toString(round(mk_z, 1)), toString(round(rho, 2)),
              if(hours_left IS NULL, '', format(', limit {} in {} h', toString(round(assumeNotNull(lim))),
                                                toString(round(assumeNotNull(hours_left), 1)))))),
    toDateTime64(seg_start, 3, 'UTC'),
    n, first_floor, last_floor, median_floor, sen, ols, growth, mk_z, rho, lim, hours_left,
    {run_id:String}, now64(3)
FROM verdicts
