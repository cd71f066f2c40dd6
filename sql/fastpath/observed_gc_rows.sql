-- The gc rows of a Kafka gctrace batch, included by observed_batch.sql (one input row per message) and
-- observed_one_line.sql (one input row per batch of one-line messages), which differ only in how they turn their
-- input into `observed_lines` (ident: the index of the message's (service, instance) in {services}/{instances};
-- observed_us: its record time in microseconds; line: one line of its value), a WITH clause each defines before this.
-- Here: the observed-time clock, the recognition and fields, the refusal of the whole batch, and the settings that make
-- it one block under the batch's token.
SELECT
    arrayElement({services:Array(String)}, ident + 1), arrayElement({instances:Array(String)}, ident + 1),
    fromUnixTimestamp64Micro(ts_us, 'UTC'), gc_num, toFloat64(since_us) / 1e6, gc_cpu_pct, stw_sweep_term_ms,
    mark_ms, stw_mark_term_ms, cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms,
    heap_start_mb, heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check,
    fromUnixTimestamp64Micro(ts_us - since_us, 'UTC'), toUInt32(0),
    multiIf(NOT stacks, 'go1.6', leak_check, 'go1.26', 'go1.18'), {source:String},
    fromUnixTimestamp64Milli({received_ms:Int64}, 'UTC'), trimRight(prefix_raw), {witness:String}
FROM
(
    SELECT
        ident, recognised, stacks, forced, leak_check, prefix_raw,
        -- The cycle's wall-clock duration, rounded half to even like Python's round().
        observed_us - toInt64(round((stw_sweep_term_ms + mark_ms + stw_mark_term_ms) * 1000)) AS ts_us,
        {{include fastpath/gc_fields.sql}}
    FROM
    (
        -- The recognition a level below the fields, so the fields read nums, base and stacks as columns (one
        -- level costs ~13 ms more planning per statement: the analyzer expands each alias into its expression).
        SELECT
            ident, observed_us,
            {{include fastpath/gc_recognise.sql}}
            toUInt32(length(nums) - if(stacks, 18, 16)) AS base
        FROM observed_lines
    )
)
WHERE NOT throwIf(NOT recognised, 'fleetwatch-fastpath: not a clean batch')
-- One block, read in order, on one thread; floats parsed exactly as Python's float(). Settings in the statement,
-- not per call: the embedded client applies per-call settings with extra statements. That holds for the batch's
-- deduplication token too: Sink.write_select passes it as {dedup_token} ('' and {deduplicate} = 0 without one).
SETTINGS precise_float_parsing = 1, input_format_parallel_parsing = 0, max_threads = 1,
         max_block_size = 1073741824, max_insert_block_size = 1073741824,
         min_insert_block_size_rows = 1073741824, min_insert_block_size_bytes = 1099511627776,
         insert_deduplication_token = {dedup_token:String}, insert_deduplicate = {deduplicate:UInt8}
