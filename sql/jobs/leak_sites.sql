-- Leak sites per instance, evaluated at the end of [window_start, window_end) over leak_site_lookback_seconds
-- of goroutine profiles (goroutine_samples). A site is the creating call plus the blocking frame; its count
-- at every goroutine snapshot of the current process incarnation (0 where the site is absent) gives the
-- series. Evidence (docs/detections.md): the goroutineleak profile (or a dump's leak marker) reports it
-- (leak_profile); its bucket floors rise and do not come back (growing_site); goroutines have waited there
-- longer than leak_site_wait_minutes while its floor grows (long_wait). One row per evaluated site.
INSERT INTO {{db}}.leak_sites
(
    service, instance, window_start, window_end, site_id, function, file, line, created_by, wait_reason,
    leaking, evidence, severity, goroutines, leaked_goroutines, first_floor, last_floor, growth_per_hour,
    floor_rho, n_snapshots, oldest_wait_minutes, example_stack_id, example_stack, run_id, computed_at
)
WITH
snaps AS
(
    SELECT service, instance, snapshot_id, profile_type, ts, process_start
    FROM {{db}}.profile_snapshots
    WHERE profile_type IN ('goroutine', 'goroutineleak')
      AND ts >= {window_end:DateTime64(3, 'UTC')} - toIntervalSecond({leak_site_lookback_seconds:UInt32})
      AND ts < {window_end:DateTime64(3, 'UTC')}
),
-- The current incarnation: the latest known process start (epoch when the profile did not say).
boot AS
(
    SELECT service, instance, max(process_start) AS boot FROM snaps GROUP BY service, instance
),
current AS
(
    SELECT s.service AS service, s.instance AS instance, s.snapshot_id AS snapshot_id,
           s.profile_type AS profile_type, s.ts AS ts
    FROM snaps AS s
    INNER JOIN boot AS b ON s.service = b.service AND s.instance = b.instance
    WHERE (s.process_start = b.boot OR (toUnixTimestamp64Milli(s.process_start) = 0 AND s.ts >= b.boot))
      -- warm-up (pools filling) is not growth; only measurable when the process start is known
      AND (toUnixTimestamp64Milli(b.boot) = 0 OR s.ts >= b.boot + toIntervalSecond({leak_warmup_seconds:UInt32}))
),
-- Per instance: the goroutine snapshots' times, the latest of them, the latest goroutineleak snapshot.
inst AS
(
    SELECT service, instance,
           arraySort(groupUniqArrayIf(ts, profile_type = 'goroutine')) AS snap_ts,
           maxIf(ts, profile_type = 'goroutine') AS last_ts,
           maxIf(ts, profile_type = 'goroutineleak') AS leak_ts,
           countIf(profile_type = 'goroutineleak') AS leak_snaps,
           max(ts) AS latest
    FROM current
    GROUP BY service, instance
    -- only instances still reporting: a profile within the last bucket before the window ends
    HAVING latest >= {window_start:DateTime64(3, 'UTC')} - toIntervalSecond({leak_site_bucket_seconds:UInt32})
),
site_snap AS
(
    SELECT service, instance, snapshot_id, profile_type, min(ts) AS sts,
           cityHash64(site_function, site_file, site_line, created_by_function, created_by_file, created_by_line)
               AS site_id,
           any(site_function) AS fn, any(site_file) AS fl, any(site_line) AS ln,
           any(created_by_function) AS cb_fn, any(created_by_file) AS cb_file, any(created_by_line) AS cb_line,
           anyIf(wait_reason, wait_reason != '') AS wr,
           sum(goroutines) AS n,
           sumIf(goroutines, leaked = 1) AS n_leaked,
           max(wait_minutes) AS wait_max,
           argMax(stack_id, goroutines) AS stack
    FROM {{db}}.goroutine_samples
    WHERE ts >= {window_end:DateTime64(3, 'UTC')} - toIntervalSecond({leak_site_lookback_seconds:UInt32})
      AND ts < {window_end:DateTime64(3, 'UTC')}
      AND snapshot_id IN (SELECT snapshot_id FROM current)
    GROUP BY service, instance, snapshot_id, profile_type, site_id
),
per_site AS
(
    SELECT s.service AS service, s.instance AS instance, s.site_id AS site_id,
           any(s.fn) AS function, any(s.fl) AS file, any(s.ln) AS line,
           if(any(s.cb_fn) = '', '',
              concat(any(s.cb_fn), if(any(s.cb_file) = '', '',
                                      concat(' ', any(s.cb_file), ':', toString(any(s.cb_line)))))) AS created_by,
           argMaxIf(s.wr, s.sts, s.wr != '') AS wait_reason,
           any(i.snap_ts) AS snap_ts,
           groupArrayIf((s.sts, s.n), s.profile_type = 'goroutine') AS pts,
           arrayMap(p -> p.1, pts) AS site_ts,
           -- the site's count at every goroutine snapshot, 0 where it was absent (drained)
           arrayMap(t -> if(has(site_ts, t), toFloat64(pts[indexOf(site_ts, t)].2), 0.), snap_ts) AS counts,
           sumIf(s.n, s.profile_type = 'goroutineleak' AND s.sts = i.leak_ts) AS leak_profile_n,
           sumIf(s.n_leaked, s.profile_type = 'goroutine' AND s.sts = i.last_ts) AS dump_leaked_n,
           maxIf(s.wait_max, s.profile_type = 'goroutine' AND s.sts = i.last_ts) AS wait_latest,
           argMax(s.stack, s.n) AS example_stack_id
    FROM site_snap AS s
    INNER JOIN inst AS i ON s.service = i.service AND s.instance = i.instance
    GROUP BY s.service, s.instance, s.site_id
),
stats AS
(
    SELECT *,
           length(counts) AS n_snaps,
           arrayMap(t -> intDiv(toUnixTimestamp64Milli(t), 1000 * {leak_site_bucket_seconds:UInt32}), snap_ts) AS bids,
           arrayDistinct(bids) AS ubs,
           -- bucket floors: load-driven goroutines leave in the troughs, leaked ones raise the floor
           arrayMap(b -> arrayMin(arrayFilter((c, bb) -> bb = b, counts, bids)), ubs) AS floors,
           length(floors) AS n_b,
           arrayMap(b -> (b - ubs[1]) * {leak_site_bucket_seconds:UInt32} / 3600.0, ubs) AS hours,
           if(n_b >= 1, floors[1], 0.) AS first_floor,
           if(n_b >= 1, floors[-1], 0.) AS last_floor,
           if(n_b >= 3, ifNotFinite(arrayReduce('rankCorr', hours, floors), 0.), 0.) AS rho,
           if(n_b >= 2, ifNotFinite(arrayReduce('simpleLinearRegression', hours, floors).1, 0.), 0.) AS slope,
           greatest(leak_profile_n, dump_leaked_n) AS leaked_n,
           greatest(toUInt64(if(n_snaps > 0, counts[-1], 0.)), leaked_n) AS goroutines_now,
           leaked_n > 0 AS ev_leak_profile,
           n_b >= {leak_site_min_buckets:UInt32}
               AND last_floor - first_floor >= {leak_site_min_growth:Float64}
               AND rho >= {leak_site_rho_min:Float64}
               AND last_floor >= arrayMax(floors) AS ev_growing,
           wait_latest >= {leak_site_wait_minutes:UInt32}
               AND n_b >= 2 AND last_floor > first_floor AND slope > 0 AS ev_long_wait
    FROM per_site
    -- evaluated sites: big enough at some snapshot, or reported leaked
    WHERE arrayMax(arrayConcat(counts, [0.])) >= {leak_site_min_goroutines:UInt32}
       OR leak_profile_n > 0 OR dump_leaked_n > 0
),
stacks AS
(
    SELECT stack_id,
           arrayStringConcat(arrayMap((f, fl, l) -> concat(f, ' ', fl, ':', toString(l)),
                                      any(functions), any(files), any(lines)), '\n') AS text
    FROM {{db}}.profile_stacks
    WHERE stack_id IN (SELECT example_stack_id FROM stats)
    GROUP BY stack_id
)
SELECT
    st.service, st.instance, {window_start:DateTime64(3, 'UTC')}, {window_end:DateTime64(3, 'UTC')},
    st.site_id, st.function, st.file, st.line, st.created_by, st.wait_reason,
    ev_leak_profile OR ev_growing OR ev_long_wait AS is_leaking,
    arrayFilter(x -> x != '', [if(ev_leak_profile, 'leak_profile', ''), if(ev_growing, 'growing_site', ''),
                               if(ev_long_wait, 'long_wait', '')]),
    multiIf(NOT is_leaking, 'none', ev_leak_profile OR (ev_growing AND ev_long_wait), 'critical', 'warning'),
    goroutines_now, leaked_n, first_floor, last_floor, slope, rho, n_snaps, wait_latest,
    st.example_stack_id, ifNull(sk.text, ''),
    {run_id:String}, now64(3)
FROM stats AS st
LEFT JOIN stacks AS sk ON st.example_stack_id = sk.stack_id
SETTINGS join_use_nulls = 1
