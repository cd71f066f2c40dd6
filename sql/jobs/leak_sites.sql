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
-- Per instance: the latest goroutine and goroutineleak snapshots, its floor buckets.
inst AS
(
    SELECT service, instance,
           maxIf(ts, profile_type = 'goroutine') AS last_ts,
           maxIf(ts, profile_type = 'goroutineleak') AS leak_ts,
           countIf(profile_type = 'goroutine') AS n_snaps,
           arraySort(groupUniqArrayIf(intDiv(toUnixTimestamp64Milli(ts), 1000 * {leak_site_bucket_seconds:UInt32}),
                                      profile_type = 'goroutine')) AS buckets,
           max(ts) AS latest
    FROM current
    GROUP BY service, instance
    -- only instances still reporting: a profile within the last bucket before the window ends
    HAVING latest >= {window_start:DateTime64(3, 'UTC')} - toIntervalSecond({leak_site_bucket_seconds:UInt32})
),
-- Goroutine snapshots per instance and bucket: a site present at fewer of them drained in between.
inst_bucket AS
(
    SELECT service, instance, intDiv(toUnixTimestamp64Milli(ts), 1000 * {leak_site_bucket_seconds:UInt32}) AS b,
           uniqExact(ts) AS snaps   -- site_snap groups by time: two profiles taken at one instant are one
    FROM current
    WHERE profile_type = 'goroutine'
    GROUP BY service, instance, b
),
-- One row per site and profile (several stacks can block at one site).
site_snap AS
(
    SELECT service, instance, ts AS sts, profile_type,
           cityHash64(site_function, site_file, site_line, created_by_function, created_by_file, created_by_line)
               AS site_id,
           sum(goroutines) AS n,
           sumIf(goroutines, leaked = 1) AS n_leaked,
           max(wait_minutes) AS wait_max,
           argMax(stack_id, goroutines) AS stack
    FROM {{db}}.goroutine_samples
    WHERE ts >= {window_end:DateTime64(3, 'UTC')} - toIntervalSecond({leak_site_lookback_seconds:UInt32})
      AND ts < {window_end:DateTime64(3, 'UTC')}
      AND snapshot_id IN (SELECT snapshot_id FROM current)
    GROUP BY service, instance, sts, profile_type, site_id
),
-- Per site and floor bucket: its minimum over the bucket's goroutine snapshots (0 when it was absent from
-- any of them: it drained) and what the latest snapshots say.
site_bucket AS
(
    SELECT s.service AS service, s.instance AS instance, s.site_id AS site_id,
           intDiv(toUnixTimestamp64Milli(s.sts), 1000 * {leak_site_bucket_seconds:UInt32}) AS b,
           countIf(s.profile_type = 'goroutine') AS present,
           if(present < any(ib.snaps), 0, minIf(s.n, s.profile_type = 'goroutine')) AS floor_b,
           maxIf(s.n, s.profile_type = 'goroutine') AS max_n,
           sumIf(s.n, s.profile_type = 'goroutine' AND s.sts = i.last_ts) AS last_n,
           sumIf(s.n, s.profile_type = 'goroutineleak' AND s.sts = i.leak_ts) AS leak_profile_n,
           sumIf(s.n_leaked, s.profile_type = 'goroutine' AND s.sts = i.last_ts) AS dump_leaked_n,
           maxIf(s.wait_max, s.profile_type = 'goroutine' AND s.sts = i.last_ts) AS wait_latest,
           argMax(s.stack, s.n) AS stack, max(s.n) AS stack_n
    FROM site_snap AS s
    INNER JOIN (SELECT service, instance, last_ts, leak_ts FROM inst) AS i
        ON s.service = i.service AND s.instance = i.instance
    LEFT JOIN inst_bucket AS ib
        ON s.service = ib.service AND s.instance = ib.instance
           AND intDiv(toUnixTimestamp64Milli(s.sts), 1000 * {leak_site_bucket_seconds:UInt32}) = ib.b
    GROUP BY service, instance, site_id, b
),
per_site AS
(
    SELECT service, instance, site_id,
           groupArrayIf((b, floor_b), present > 0) AS site_floors,
           max(max_n) AS max_count,
           sum(last_n) AS last_count,
           sum(leak_profile_n) AS leak_profile_n,
           sum(dump_leaked_n) AS dump_leaked_n,
           max(wait_latest) AS wait_latest,
           argMax(stack, stack_n) AS example_stack_id
    FROM site_bucket
    GROUP BY service, instance, site_id
),
stats AS
(
    SELECT p.*, i.n_snaps AS n_snaps,
           -- every bucket of the instance; a bucket without the site at all has floor 0
           arrayMap(bb -> if(has(arrayMap(x -> x.1, site_floors), bb),
                             toFloat64(site_floors[indexOf(arrayMap(x -> x.1, site_floors), bb)].2), 0.),
                    i.buckets) AS floors,
           length(floors) AS n_b,
           arrayMap(bb -> (bb - i.buckets[1]) * {leak_site_bucket_seconds:UInt32} / 3600.0, i.buckets) AS hours,
           if(n_b >= 1, floors[1], 0.) AS first_floor,
           if(n_b >= 1, floors[-1], 0.) AS last_floor,
           if(n_b >= 3, ifNotFinite(arrayReduce('rankCorr', hours, floors), 0.), 0.) AS rho,
           if(n_b >= 2, ifNotFinite(arrayReduce('simpleLinearRegression', hours, floors).1, 0.), 0.) AS slope,
           greatest(leak_profile_n, dump_leaked_n) AS leaked_n,
           greatest(last_count, leaked_n) AS goroutines_now,
           leaked_n > 0 AS ev_leak_profile,
           n_b >= {leak_site_min_buckets:UInt32}
               AND last_floor - first_floor >= {leak_site_min_growth:Float64}
               AND rho >= {leak_site_rho_min:Float64}
               AND last_floor >= arrayMax(floors) AS ev_growing,
           wait_latest >= {leak_site_wait_minutes:UInt32}
               AND n_b >= 2 AND last_floor > first_floor AND slope > 0 AS ev_long_wait
    FROM per_site AS p
    INNER JOIN inst AS i ON p.service = i.service AND p.instance = i.instance
    -- evaluated sites: big enough at some snapshot, or reported leaked
    WHERE max_count >= {leak_site_min_goroutines:UInt32} OR leak_profile_n > 0 OR dump_leaked_n > 0
),
-- Names of the sites, read once per site (the code is the same on every instance of a service).
site_names AS
(
    SELECT cityHash64(site_function, site_file, site_line, created_by_function, created_by_file, created_by_line)
               AS site_id,
           any(site_function) AS function, any(site_file) AS file, any(site_line) AS line,
           if(any(created_by_function) = '', '',
              concat(any(created_by_function),
                     if(any(created_by_file) = '', '',
                        concat(' ', any(created_by_file), ':', toString(any(created_by_line)))))) AS created_by,
           argMaxIf(wait_reason, ts, wait_reason != '') AS wait_reason
    FROM {{db}}.goroutine_samples
    WHERE ts >= {window_end:DateTime64(3, 'UTC')} - toIntervalSecond({leak_site_lookback_seconds:UInt32})
      AND ts < {window_end:DateTime64(3, 'UTC')}
    GROUP BY site_id
),
stacks AS
(
    SELECT stack_id,
           arrayStringConcat(arrayMap((f, fl, l) -> concat(f, ' ', fl, ':', toString(l)),
                                      any(functions), any(files), any(lines)), '\n') AS text
    FROM {{db}}.profile_stacks
    -- the stacks seen in the lookback (a light scan; filtering on `stats` would compute it all twice)
    WHERE stack_id IN (
        SELECT stack_id FROM {{db}}.goroutine_samples
        WHERE ts >= {window_end:DateTime64(3, 'UTC')} - toIntervalSecond({leak_site_lookback_seconds:UInt32})
          AND ts < {window_end:DateTime64(3, 'UTC')})
    GROUP BY stack_id
)
SELECT
    st.service, st.instance, {window_start:DateTime64(3, 'UTC')}, {window_end:DateTime64(3, 'UTC')},
    st.site_id, sn.function, sn.file, sn.line, sn.created_by, sn.wait_reason,
    ev_leak_profile OR ev_growing OR ev_long_wait AS is_leaking,
    arrayFilter(x -> x != '', [if(ev_leak_profile, 'leak_profile', ''), if(ev_growing, 'growing_site', ''),
                               if(ev_long_wait, 'long_wait', '')]),
    multiIf(NOT is_leaking, 'none', ev_leak_profile OR (ev_growing AND ev_long_wait), 'critical', 'warning'),
    goroutines_now, leaked_n, first_floor, last_floor, slope, rho, n_snaps, wait_latest,
    st.example_stack_id, ifNull(sk.text, ''),
    {run_id:String}, now64(3)
FROM stats AS st
INNER JOIN site_names AS sn ON st.site_id = sn.site_id
LEFT JOIN stacks AS sk ON st.example_stack_id = sk.stack_id
SETTINGS join_use_nulls = 1
