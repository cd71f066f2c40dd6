SELECT ts, gc_num, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms, cpu_assist_ms, cpu_background_ms,
       cpu_idle_ms, heap_start_mb, heap_end_mb, heap_live_mb, heap_goal_mb, procs, forced
FROM {{db}}.gc_events
WHERE service = {service:String} AND instance = {instance:String} AND ts >= {since:DateTime64(3, 'UTC')}
ORDER BY ts
