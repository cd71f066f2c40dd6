-- The gc rows of a Kafka batch, in the Python stage in several blocks (the Python normalizer's, then the engine's)
-- -> a second Memory table as ONE block (one thread, squashed), which observed_insert_staged.sql inserts into
-- gc_events: the engine deduplicates an INSERT ... SELECT block by block of its source, so a replay gives the
-- same block under the same token only from a one-block source.
INSERT INTO {{db}}.{target:Identifier}
    (service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
     cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
     heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
     incarnation, format, source, received_at, line_prefix)
SELECT
    service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
    cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
    heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
    incarnation, format, source, received_at, line_prefix
FROM {{db}}.{source:Identifier}
-- One block, read in one block, on one thread; floats parsed exactly as Python's float() (gctrace_engine.py's store_gc).
-- Settings in the statement, not per call: the embedded client applies per-call settings with extra statements
-- (a system.settings read, a SET per setting and a SET back per setting).
SETTINGS precise_float_parsing = 1, max_threads = 1, max_insert_threads = 1, max_block_size = 1073741824,
         max_insert_block_size = 1073741824, min_insert_block_size_rows = 1073741824,
         min_insert_block_size_bytes = 1099511627776
