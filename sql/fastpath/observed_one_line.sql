-- observed_batch.sql for a Kafka gctrace batch of one plain line per message (pipeline/sources/kafka/gctrace_engine.py,
-- `one_line_input`): the batch is one RowBinary row of three columns, built with no Python step per message: the
-- record times in milliseconds (Array(Int64), packed by `array`), each message's identity index into
-- {services}/{instances} (Array(UInt32), likewise) and the values joined by line breaks (one `bytes.join`). ARRAY JOIN
-- pairs the i-th time, identity and line; a gc row depends only on those three, so the rows are those of
-- observed_batch.sql, and of the reference, for the same messages (tests/integration/test_kafka_gctrace_one_statement.py).
-- Everything else is observed_batch.sql's: the observed-time clock, the recognition, the refusal of the whole batch
-- (throwIf, nothing stored) when a line is not one it takes, one block under the batch's token, {witness}.
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    , ingest_batch)
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
        SELECT
            ident, observed_us,
            {{include fastpath/gc_recognise.sql}}
            toUInt32(length(nums) - if(stacks, 18, 16)) AS base
        FROM
        (
            SELECT ident, observed_ms * 1000 AS observed_us, line
            FROM input('observed_ms Array(Int64), idents Array(UInt32), lines String')
            ARRAY JOIN observed_ms, idents AS ident, splitByChar('\n', lines) AS line
        )
    )
)
WHERE NOT throwIf(NOT recognised, 'fleetwatch-fastpath: not a clean batch')
-- As observed_batch.sql: one block, read in order, on one thread; floats parsed exactly as Python's float(); the
-- batch's deduplication token from its parameters (Sink.write_select), not per-call settings.
SETTINGS precise_float_parsing = 1, input_format_parallel_parsing = 0, max_threads = 1,
         max_block_size = 1073741824, max_insert_block_size = 1073741824,
         min_insert_block_size_rows = 1073741824, min_insert_block_size_bytes = 1099511627776,
         insert_deduplication_token = {dedup_token:String}, insert_deduplicate = {deduplicate:UInt8}
FORMAT RowBinary
