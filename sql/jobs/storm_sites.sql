-- Storm sites: for every instance in a GC storm in [window_start, window_end) (gc_storms, computed first),
-- its top allocation sites. Rates come from consecutive heap profiles of one process: alloc_space and
-- alloc_objects are cumulative since the process started, so a site's rate is its growth between two
-- snapshots over the time between them. A pair is dropped when it spans a restart (process_start changed, or
-- a counter went down) or its interval is outside [alloc_min_interval_seconds, alloc_max_interval_seconds],
-- so no rate is ever negative or divided by a sliver of time. Pairs ending in
-- [window_start - storm_sites_lookback_seconds, window_end) count; rates are total growth / total time.
INSERT INTO {{db}}.storm_sites
(
    service, instance, window_start, window_end, rank, function, file, line, bytes_per_sec, objects_per_sec,
    share, instance_bytes_per_sec, span_seconds, pairs, example_stack_id, run_id, computed_at
)
WITH
storms AS
(
    SELECT service, instance
    FROM {{db}}.gc_storms FINAL
    WHERE window_start = {window_start:DateTime64(3, 'UTC')} AND storm = 1
),
heap_snaps AS
(
    SELECT service, instance, snapshot_id, profile_type, min(ts) AS sts,
           sum(alloc_space) AS total_space, sum(alloc_objects) AS total_objects
    FROM {{db}}.heap_samples
    WHERE ts >= {window_start:DateTime64(3, 'UTC')} - toIntervalSecond(2 * {storm_sites_lookback_seconds:UInt32})
      AND ts < {window_end:DateTime64(3, 'UTC')}
      AND (service, instance) IN (SELECT service, instance FROM storms)
    GROUP BY service, instance, snapshot_id, profile_type
),
-- allocs and heap profiles carry the same counters: use one kind per instance (allocs when scraped)
kinds AS
(
    SELECT service, instance, if(countIf(profile_type = 'allocs') > 0, 'allocs', 'heap') AS kind
    FROM heap_snaps
    GROUP BY service, instance
),
starts AS
(
    SELECT snapshot_id, any(process_start) AS process_start
    FROM {{db}}.profile_snapshots
    WHERE ts >= {window_start:DateTime64(3, 'UTC')} - toIntervalSecond(2 * {storm_sites_lookback_seconds:UInt32})
      AND ts < {window_end:DateTime64(3, 'UTC')}
      AND profile_type IN ('allocs', 'heap')
    GROUP BY snapshot_id
),
snap_list AS
(
    SELECT h.service AS service, h.instance AS instance, h.snapshot_id AS snapshot_id, h.sts AS ts,
           h.total_space AS total_space, h.total_objects AS total_objects, s.process_start AS process_start
    FROM heap_snaps AS h
    INNER JOIN kinds AS k ON h.service = k.service AND h.instance = k.instance AND h.profile_type = k.kind
    LEFT JOIN starts AS s ON h.snapshot_id = s.snapshot_id
),
pairs AS
(
    SELECT service, instance, snapshot_id, ts, process_start, total_space, total_objects,
           row_number() OVER w AS rn,
           lagInFrame(snapshot_id) OVER w AS prev_id,
           lagInFrame(ts) OVER w AS prev_ts,
           lagInFrame(process_start) OVER w AS prev_start,
           lagInFrame(total_space) OVER w AS prev_space,
           lagInFrame(total_objects) OVER w AS prev_objects
    FROM snap_list
    WINDOW w AS (PARTITION BY service, instance ORDER BY ts ASC, snapshot_id ASC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
valid_pairs AS
(
    SELECT service, instance, snapshot_id, prev_id, dateDiff('millisecond', prev_ts, ts) / 1000.0 AS dt
    FROM pairs
    WHERE rn > 1
      AND ts >= {window_start:DateTime64(3, 'UTC')} - toIntervalSecond({storm_sites_lookback_seconds:UInt32})
      AND dt >= {alloc_min_interval_seconds:Float64} AND dt <= {alloc_max_interval_seconds:Float64}
      -- one process: start times agree where both are known, the previous profile is not older than it
      AND NOT (toUnixTimestamp64Milli(process_start) != 0 AND toUnixTimestamp64Milli(prev_start) != 0
               AND process_start != prev_start)
      AND (toUnixTimestamp64Milli(process_start) = 0 OR prev_ts >= process_start)
      -- a cumulative counter that went down is a restart nobody announced
      AND total_space >= prev_space AND total_objects >= prev_objects
),
site_vals AS
(
    SELECT snapshot_id, site_function AS fn, site_file AS fl, site_line AS ln,
           sum(alloc_space) AS space, sum(alloc_objects) AS objects, argMax(stack_id, alloc_space) AS stack
    FROM {{db}}.heap_samples
    WHERE ts >= {window_start:DateTime64(3, 'UTC')} - toIntervalSecond(2 * {storm_sites_lookback_seconds:UInt32})
      AND ts < {window_end:DateTime64(3, 'UTC')}
      AND snapshot_id IN (SELECT snapshot_id FROM valid_pairs UNION ALL SELECT prev_id FROM valid_pairs)
    GROUP BY snapshot_id, fn, fl, ln
),
site_deltas AS
(
    SELECT p.service AS service, p.instance AS instance, c.fn AS fn, c.fl AS fl, c.ln AS ln, c.stack AS stack,
           -- a site new since the previous profile started from 0; within one process nothing goes down
           greatest(c.space - pv.space, 0) AS d_space,
           greatest(c.objects - pv.objects, 0) AS d_objects
    FROM valid_pairs AS p
    INNER JOIN site_vals AS c ON c.snapshot_id = p.snapshot_id
    LEFT JOIN site_vals AS pv ON pv.snapshot_id = p.prev_id AND pv.fn = c.fn AND pv.fl = c.fl AND pv.ln = c.ln
),
inst_tot AS
(
    SELECT service, instance, sum(dt) AS secs, count() AS n_pairs FROM valid_pairs GROUP BY service, instance
),
site_tot AS
(
    SELECT service, instance, fn, fl, ln, sum(d_space) AS space, sum(d_objects) AS objects,
           argMax(stack, d_space) AS stack,
           sum(space) OVER (PARTITION BY service, instance) AS inst_space
    FROM site_deltas
    GROUP BY service, instance, fn, fl, ln
),
ranked AS
(
    SELECT s.service AS service, s.instance AS instance, s.fn AS fn, s.fl AS fl, s.ln AS ln,
           s.space / i.secs AS bps, s.objects / i.secs AS ops,
           if(s.inst_space > 0, s.space / s.inst_space, 0) AS share, s.inst_space / i.secs AS inst_bps,
           i.secs AS secs, i.n_pairs AS n_pairs, s.stack AS stack,
           row_number() OVER (PARTITION BY s.service, s.instance ORDER BY s.space DESC, s.fn, s.fl, s.ln) AS rk
    FROM site_tot AS s
    INNER JOIN inst_tot AS i ON s.service = i.service AND s.instance = i.instance
    WHERE i.secs > 0 AND s.space > 0
)
SELECT service, instance, {window_start:DateTime64(3, 'UTC')}, {window_end:DateTime64(3, 'UTC')},
       rk, fn, fl, ln, bps, ops, share, inst_bps, secs, n_pairs, stack, {run_id:String}, now64(3)
FROM ranked
WHERE rk <= {storm_sites_top:UInt32}
