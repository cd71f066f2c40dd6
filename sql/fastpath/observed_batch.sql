-- The common case of a Kafka gctrace batch (pipeline/sources/kafka/gctrace_engine.py): every message raw text whose
-- lines are all plain gc lines. The messages arrive as they came off the wire, one RowBinary row each (the record
-- time in microseconds, the index of the message's (service, instance) in {services}/{instances}, the value), and
-- this one statement splits the values into lines, recognises and parses every line, and stores the batch in
-- gc_events: no stage table, no Python string per line.
--
-- The observed-time clock of pipeline/normalize/gctrace._ObservedClock, as observed_insert.sql applies it: a gc
-- line is printed when its cycle ends, so ts = observed - the cycle's wall-clock duration, process_start =
-- ts - @T, incarnation 0; nothing is carried from line to line, so a restart needs nothing here either.
-- Recognition is observed_stage.sql's (gctrace_stage.sql's regexes; the two forms, without and with the leak-check
-- marker, are one regex here). A line the statement does not take fails the whole batch with throwIf: the
-- settings make the batch one block, read in order, so the check sees every line before a row is written, a
-- refused batch stores nothing, and the caller falls back to the stage path, which handles every line as the
-- reference does. One block is also what the stage path inserts (its gathered table), so a batch written one
-- way and replayed the other is the same single block under the same deduplication token.
--
-- A value's final line terminator makes no line (pipeline/normalize/lines.split_lines); a carriage return
-- before it stays on the line, where the end-anchored regex allows it, as it allows trailing blanks.
-- {witness}: every row's ingest_batch, the insert's token for a Kafka write and '' for any other (migration 106,
-- pipeline/sources/kafka/witness.py).
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
        -- The recognition a level below the fields, so the fields read nums, base and stacks as columns (one
        -- level costs ~13 ms more planning per statement: the analyzer expands each alias into its expression).
        SELECT
            ident, observed_us,
            {{include fastpath/gc_recognise.sql}}
            toUInt32(length(nums) - if(stacks, 18, 16)) AS base
        FROM
        (
            SELECT ident, observed_us,
                   arrayJoin(if(endsWith(value, '\n'), arrayPopBack(splitByChar('\n', value)), splitByChar('\n', value)))
                       AS line
            FROM input('observed_us Int64, ident UInt32, value String')
        )
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
FORMAT RowBinary
