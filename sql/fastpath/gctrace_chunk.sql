-- The common case of the gctrace fast path (pipeline/sources/gctrace_fast.py): one chunk of a fixed-start
-- stream whose lines are all plain gc lines, parsed from the raw bytes and stored in gc_events by this one
-- statement. The chunk's lines arrive through input('line String') in the LineAsString format, as one block
-- (the SETTINGS below), so the throwIf in WHERE sees every line before any row is written: a chunk with a
-- line this statement does not take, or with a restart, stores nothing and the caller falls back to the
-- span path (gctrace_stage.sql and friends), which handles every line exactly as the reference does.
--
-- Recognition is gctrace_stage.sql's (the regexes there are the ones documented; the two forms, without and
-- with the leak-check marker, are one regex here). The stream clock of normalize.gctrace._StreamClock with
-- no restart is ts = start + @T within the current incarnation: a line whose cycle number or @T goes back
-- (against the line before it, or against the clock state for the first line) is a restart, and the chunk
-- is refused. The clock state after the chunk is its last line's (the caller parses that one line).
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    )
SELECT
    {service:String}, {instance:String}, fromUnixTimestamp64Micro({start_us:Int64} + since_us, 'UTC'), gc_num,
    toFloat64(since_us) / 1e6, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms, cpu_sweep_term_ms,
    cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb, heap_end_mb, heap_live_mb,
    heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check,
    fromUnixTimestamp64Micro({start_us:Int64}, 'UTC'), {incarnation:UInt32},
    multiIf(NOT stacks, 'go1.6', leak_check, 'go1.26', 'go1.18'), {source:String},
    fromUnixTimestamp64Milli({received_ms:Int64}, 'UTC'), trimRight(prefix_raw)
FROM
(
    -- Only the columns the rest reads go through the window (it copies every column it is given).
    SELECT
        * EXCEPT ({{include fastpath/gc_scratch_columns.sql}}),
        toInt64(gc_num) < lagInFrame(toInt64(gc_num), 1, {last_num:Int64}) OVER w
            OR since_us < lagInFrame(since_us, 1, {last_since_us:Int64}) OVER w AS restart
    FROM
    (
        -- The fields in a level of their own above the recognition: the analyzer expands every alias a
        -- field names into the whole expression behind it (nums -> recognised -> shape ...), so one level
        -- cost ~13 ms more planning per statement; here they read nums, base and stacks as columns.
        SELECT
            *,
            {{include fastpath/gc_fields.sql}}
        FROM
        (
            SELECT
                {{include fastpath/gc_recognise.sql}}
                length(nums) - if(stacks, 18, 16) AS base,
                line
            FROM input('line String')
        )
    )
    WINDOW w AS (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
WHERE NOT throwIf(NOT recognised OR restart, 'fleetwatch-fastpath: not a clean chunk')
-- One block, read in order (so the window's previous row is the previous line and the check sees every line
-- before a row is written); floats parsed exactly as Python's float(). Settings in the statement, not per
-- call: the embedded client applies per-call settings with extra statements.
SETTINGS precise_float_parsing = 1, input_format_parallel_parsing = 0, max_threads = 1,
         max_block_size = 1073741824, max_insert_block_size = 1073741824,
         min_insert_block_size_rows = 1073741824, min_insert_block_size_bytes = 1099511627776
FORMAT LineAsString
