-- Synthetic fleet for the job benchmark: {instances} instances over {seconds} seconds before {end}.
-- One GC cycle every 2 s per instance (every 0.2 s for the 5 % in a storm), live heap flat except for the
-- 4 % that leak; goroutine counts every 10 s with a load wave (leakers' floor climbs); a memory limit each.
INSERT INTO {{db}}.gc_events
    (service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
     cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
     heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
     incarnation, format, source, received_at)
SELECT
    concat('svc-', toString(inst % 50)), concat('inst-', toString(inst)),
    {end:DateTime64(3, 'UTC')} - toIntervalMillisecond({seconds:UInt32} * 1000 - k * step_ms - inst % 1000) AS ts,
    k + 1, 3600 + k * step_ms / 1000, if(storm, 30, 2),
    0.02 + (k % 7) / 100, if(storm, 9, 2), 0.03 + (k % 5) / 100,
    0.1, if(storm, 80, 0.05), if(storm, 9, 0.9), 0.3, 0.1,
    if(leak, 100 + intDiv(k, 10), 100) * 2, if(leak, 100 + intDiv(k, 10), 100) * 2 + 3,
    if(leak, 100 + intDiv(k, 10), 100) + (k % 3), if(leak, 100 + intDiv(k, 10), 100) * 2, 1, 1, 4, 0, 0,
    {end:DateTime64(3, 'UTC')} - toIntervalSecond({seconds:UInt32} + 3600), 1, 'go1.18', 'bench', now64(3)
FROM
(
    SELECT number % {instances:UInt32} AS inst, intDiv(number, {instances:UInt32}) AS k,
           inst % 20 = 0 AS storm, inst % 25 = 1 AS leak, if(storm, 200, 2000) AS step_ms
    FROM numbers({instances:UInt32} * intDiv({seconds:UInt32} * 1000, 200))
    WHERE k * step_ms < {seconds:UInt32} * 1000
);
INSERT INTO {{db}}.runtime_metrics (service, instance, ts, metric, value, unit, source_name, process_start, received_at)
SELECT
    concat('svc-', toString(inst % 50)), concat('inst-', toString(inst)),
    {end:DateTime64(3, 'UTC')} - toIntervalSecond({seconds:UInt32} - k * 10) AS ts,
    m.1, m.2, m.3, 'bench', {end:DateTime64(3, 'UTC')} - toIntervalSecond({seconds:UInt32} + 3600), now64(3)
FROM
(
    SELECT number % {instances:UInt32} AS inst, intDiv(number, {instances:UInt32}) AS k
    FROM numbers({instances:UInt32} * intDiv({seconds:UInt32}, 10))
)
ARRAY JOIN [('go.goroutine.count', 50 + 200 * abs(sin(k / 30)) + if(inst % 25 = 1, k, 0), '{goroutine}'),
            ('go.memory.limit', 2147483648, 'By')] AS m;
-- Profiles, one a minute per instance (goroutine and allocs): 20 goroutine sites (a pool following the load
-- wave; at the leakers a site whose count climbs) and 20 allocation sites with cumulative counters.
INSERT INTO {{db}}.profile_snapshots
    (service, instance, ts, snapshot_id, profile_type, source, format, total_goroutines, sample_period,
     duration_ns, process_start, go_version, stacks, bytes, received_at)
SELECT
    concat('svc-', toString(inst % 50)), concat('inst-', toString(inst)),
    {end:DateTime64(3, 'UTC')} - toIntervalSecond({seconds:UInt32} - k * 60) AS ts,
    concat(pt, '-', toString(inst), '-', toString(k)), pt, 'scrape', 'pprof', 0, if(pt = 'allocs', 524288, 0), 0,
    {end:DateTime64(3, 'UTC')} - toIntervalSecond({seconds:UInt32} + 3600), 'go1.27', 20, 4096, now64(3)
FROM
(
    SELECT number % {instances:UInt32} AS inst, intDiv(number, {instances:UInt32}) AS k
    FROM numbers({instances:UInt32} * intDiv({seconds:UInt32}, 60))
)
ARRAY JOIN ['goroutine', 'allocs'] AS pt;
INSERT INTO {{db}}.goroutine_samples
    (service, instance, ts, snapshot_id, profile_type, stack_id, goroutines, wait_reason, wait_minutes,
     site_function, site_file, site_line, created_by_function, created_by_file, created_by_line, leaked)
SELECT
    concat('svc-', toString(inst % 50)), concat('inst-', toString(inst)),
    {end:DateTime64(3, 'UTC')} - toIntervalSecond({seconds:UInt32} - k * 60),
    concat('goroutine-', toString(inst), '-', toString(k)), 'goroutine', cityHash64(site),
    multiIf(site = 0 AND inst % 25 = 1, 5 + k, site = 1, toUInt64(5 + 40 * abs(sin(k / 3))), 3 + site % 4),
    'chan receive', 0, concat('main.site', toString(site)), '/app/main.go', 10 + site,
    'main.main', '/app/main.go', 5, 0
FROM
(
    SELECT number % {instances:UInt32} AS inst, intDiv(number, {instances:UInt32}) AS k
    FROM numbers({instances:UInt32} * intDiv({seconds:UInt32}, 60))
)
ARRAY JOIN range(20) AS site;
INSERT INTO {{db}}.heap_samples
    (service, instance, ts, snapshot_id, profile_type, stack_id, alloc_objects, alloc_space, inuse_objects,
     inuse_space, site_function, site_file, site_line)
SELECT
    concat('svc-', toString(inst % 50)), concat('inst-', toString(inst)),
    {end:DateTime64(3, 'UTC')} - toIntervalSecond({seconds:UInt32} - k * 60),
    concat('allocs-', toString(inst), '-', toString(k)), 'allocs', cityHash64(site),
    (3600 + k * 60) * intDiv(1000, pow(2, site % 8)), (3600 + k * 60) * intDiv(1048576, pow(2, site % 8)), 100, 1048576,
    concat('main.alloc', toString(site)), '/app/alloc.go', 10 + site
FROM
(
    SELECT number % {instances:UInt32} AS inst, intDiv(number, {instances:UInt32}) AS k
    FROM numbers({instances:UInt32} * intDiv({seconds:UInt32}, 60))
)
ARRAY JOIN range(20) AS site
