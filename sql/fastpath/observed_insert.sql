-- The recognised lines of a staged Kafka batch -> {target}, the Memory table that holds the batch's gc rows (with
-- those the Python normalizer made), gathered next into one block (observed_gather.sql) and inserted into gc_events
-- (observed_insert_staged.sql). The observed-time clock of
-- pipeline/normalize/gctrace._ObservedClock: a gc line is printed when its cycle ends, so
-- ts = observed - the cycle's wall-clock duration, process_start = ts - @T, incarnation 0. No state is carried
-- from line to line, so no window function is needed. Runs between {skip_first} and {skip_last} are left out
-- (the reference normalized them whole: their gc rows are among the Python rows). The fields are read from the line's numbers as gctrace_stage.sql reads them:
-- the match is anchored at the end of the line and is the only one in it, so the last 16 numbers (18 with
-- stacks and globals) are the gc line's; each position is named once, in gc_fields.sql.
INSERT INTO {{db}}.{target:Identifier}
    (service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
     cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
     heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
     incarnation, format, source, received_at, line_prefix)
SELECT
    arrayElement({services:Array(String)}, ident + 1), arrayElement({instances:Array(String)}, ident + 1),
    fromUnixTimestamp64Micro(ts_us, 'UTC'), gc_num, toFloat64(since_us) / 1e6, gc_cpu_pct, stw_sweep_term_ms,
    mark_ms, stw_mark_term_ms, cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms,
    heap_start_mb, heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_form,
    fromUnixTimestamp64Micro(ts_us - since_us, 'UTC'), toUInt32(0), format, {source:String},
    fromUnixTimestamp64Milli({received_ms:Int64}, 'UTC'), trimRight(prefix_raw)
FROM
(
    SELECT
        seq, ident, leak_form, prefix_raw, stacks, forced, gc_num, gc_cpu_pct, stw_sweep_term_ms, mark_ms,
        stw_mark_term_ms, cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms,
        heap_start_mb, heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, since_us,
        multiIf(NOT stacks, 'go1.6', leak_form, 'go1.26', 'go1.18') AS format,
        -- The cycle's wall-clock duration, rounded half to even like Python's round().
        observed_us - toInt64(round((stw_sweep_term_ms + mark_ms + stw_mark_term_ms) * 1000)) AS ts_us
    FROM
    (
        SELECT
            seq, ident, observed_us, leak_form, prefix_raw,
            toUInt8(match(line, ' MB stacks, \\d+ MB globals, \\d+ P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$')) AS stacks,
            toUInt8(match(line, ' P \\(forced\\)[ \\t\\r\\f\\v]*$')) AS forced,
            extractAll(line, '\\d+(?:\\.\\d+)?') AS nums,
            toUInt32(length(nums) - if(stacks, 18, 16)) AS base,
            {{include fastpath/gc_fields.sql}}
        FROM {{db}}.{stage:Identifier}
        WHERE recognised
          AND NOT arrayExists((f, l) -> seq BETWEEN f AND l, {skip_first:Array(UInt32)}, {skip_last:Array(UInt32)})
    )
)
-- One block, read in one block, on one thread; floats parsed exactly as Python's float() (gctrace_engine.py's store_gc).
-- Settings in the statement, not per call: the embedded client applies per-call settings with extra statements
-- (a system.settings read, a SET per setting and a SET back per setting).
SETTINGS precise_float_parsing = 1, max_threads = 1, max_insert_threads = 1, max_block_size = 1073741824,
         max_insert_block_size = 1073741824, min_insert_block_size_rows = 1073741824,
         min_insert_block_size_bytes = 1099511627776
