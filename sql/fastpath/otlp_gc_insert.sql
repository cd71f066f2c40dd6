-- Plain gc lines of OTLP log bodies -> gc_events, in one statement per write of the OTLP writer
-- (pipeline/sink.py, EngineGcLines). pipeline/normalize/plain_gc.py decided that every line is a plain gc line
-- with no runtime head in its printable-ASCII prefix, so the prefix is the text before the first head and the
-- rest of the line is the gc line itself: its leak-check, stacks and forced forms are plain substring tests and
-- its numbers are its own (base 0 in gc_fields.sql).
--
-- Input: one RowBinary row per resource of a request (its identity, transport, receive time, the records'
-- observed times in unix ns, and the lines joined by '\n'), read as one block on one thread, so the insert is one
-- block and a request written on its own carries its dedup token as the Python path's insert does; arrayZip
-- fails the statement if a resource's times and lines differ in number, so no line is dropped.
--
-- The observed-time clock of pipeline/normalize/gctrace._ObservedClock: a gc line is printed when its cycle
-- ends, so ts = observed - the cycle's wall-clock duration, process_start = ts - @T, incarnation 0; nothing is
-- carried from line to line.
-- {witness}: every row's ingest_batch, the insert's token for a Kafka write and '' for any other (migration 106,
-- pipeline/witness.py).
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    , ingest_batch)
SELECT
    service, instance, fromUnixTimestamp64Micro(ts_us, 'UTC'), gc_num, toFloat64(since_us) / 1e6, gc_cpu_pct,
    stw_sweep_term_ms, mark_ms, stw_mark_term_ms, cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms,
    cpu_mark_term_ms, heap_start_mb, heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced,
    leak_form, fromUnixTimestamp64Micro(ts_us - since_us, 'UTC'), toUInt32(0), format, source,
    fromUnixTimestamp64Milli(received_ms, 'UTC'), trimRight(prefix_raw), {witness:String}
FROM
(
    SELECT
        *,
        multiIf(NOT stacks, 'go1.6', leak_form, 'go1.26', 'go1.18') AS format,
        -- The cycle's wall-clock duration, rounded half to even like Python's round().
        intDiv(observed_ns, 1000) - toInt64(round((stw_sweep_term_ms + mark_ms + stw_mark_term_ms) * 1000)) AS ts_us
    FROM
    (
        SELECT
            service, instance, source, received_ms, observed_ns,
            if(startsWith(line, 'gc '), '',
               extract(line, '^(.*?)(?:gc #?\\d+ @|(?:forced )?scvg|scav \\d|pacer: )')) AS prefix_raw,
            substring(line, length(prefix_raw) + 1) AS gc_line,
            toUInt8(position(gc_line, '% (checking for goroutine leaks): ') > 0) AS leak_form,
            toUInt8(position(gc_line, ' MB stacks, ') > 0) AS stacks,
            toUInt8(position(gc_line, ' P (forced)') > 0) AS forced,
            extractAll(gc_line, '\\d+(?:\\.\\d+)?') AS nums,
            toUInt32(0) AS base,
            {{include fastpath/gc_fields.sql}}
        FROM
        (
            SELECT service, instance, source, received_ms, pair.1 AS observed_ns, pair.2 AS line
            FROM input('service String, instance String, source String, received_ms Int64, times Array(Int64), text String')
            ARRAY JOIN arrayZip(times, splitByChar('\n', text)) AS pair
        )
    )
)
-- Read in order, 64 resources (64k lines at the usual 1,000 records) at a time, so a journal segment's 100k-200k
-- lines are never expanded into one block of per-line arrays at once (less memory, and 0.1-0.4 CPU s per M less,
-- docs/benchmarks.md "OTLP: the journal"); squashed back into one insert block, so an insert is still one part
-- (per partition). Floats parsed exactly as Python's float(). Settings in the statement, not per call:
-- the embedded client applies per-call settings with extra statements. {deduplicate} is 0 for a write that merges
-- several requests and so carries no token: the store's deduplication by content could only drop a merged write
-- repeated with the same rows, which the writer never sends (a request's retry is recognised by its token, in the
-- writer and the request ledger), and it costs a fixed ~15 ms of CPU per insert, about 1.5 us per row at the
-- 10,000-row writes that 16 exporters give (docs/benchmarks.md). A request written alone passes its token as
-- {dedup_token} ('' for a merged write), for the same reason.
SETTINGS insert_deduplicate = {deduplicate:UInt8}, insert_deduplication_token = {dedup_token:String},
         precise_float_parsing = 1, input_format_parallel_parsing = 0, max_threads = 1, max_insert_threads = 1,
         max_block_size = 64, max_insert_block_size = 1073741824,
         min_insert_block_size_rows = 1073741824, min_insert_block_size_bytes = 1099511627776
FORMAT RowBinary
