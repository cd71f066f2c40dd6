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
    0.1, if(storm, 8, 0.05), if(storm, 9, 0.9), 0.3, 0.1,
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
            ('go.memory.limit', 2147483648, 'By')] AS m
