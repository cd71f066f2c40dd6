-- The gc_events columns the fast paths' statements write, in the order their SELECT lists give them: an `include`
-- fragment (pipeline/sqlfiles.py) inside each statement's `INSERT INTO {{db}}.gc_events (...)`, so the list is
-- written once (observed_insert_staged.sql also SELECTs it from a stage with the same names). Statements that carry
-- a Kafka witness add `ingest_batch` after it.
service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
incarnation, format, source, received_at, line_prefix
