-- Every gc row of a Kafka batch, gathered as one block (observed_gather.sql) -> gc_events as one insert read from
-- that one block, so the batch's deduplication token covers all of them as when the Python path inserts them.
-- {witness}: every row's ingest_batch, the insert's token for a Kafka write and '' for any other (migration 106,
-- pipeline/sources/kafka/witness.py).
INSERT INTO {{db}}.gc_events
    (service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
     cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
     heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
     incarnation, format, source, received_at, line_prefix, ingest_batch)
SELECT
    service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
    cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
    heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
    incarnation, format, source, received_at, line_prefix, {witness:String}
FROM {{db}}.{gathered:Identifier}
