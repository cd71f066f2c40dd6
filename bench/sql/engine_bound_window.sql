-- Engine bound with the general stream clock (bench/engine_bound.py): gctrace_chunk.sql's parse, then the
-- clock of gctrace_insert.sql with window functions ordered by the line's number (restarts open
-- incarnations inside the statement), so no chunk is refused for a restart; the clock state after the
-- chunk would then have to be read back.
INSERT INTO {{db}}.gc_events
    (service, instance, ts, gc_num, since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
     cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb,
     heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, process_start,
     incarnation, format, source, received_at, line_prefix)
SELECT
    {service:String}, {instance:String}, fromUnixTimestamp64Micro(start_us + since_us, 'UTC'), gc_num,
    toFloat64(since_us) / 1e6, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms, cpu_sweep_term_ms,
    cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb, heap_end_mb, heap_live_mb,
    heap_goal_mb, if(stacks, stacks_mb, NULL), if(stacks, globals_mb, NULL), procs, forced, leak_check,
    fromUnixTimestamp64Micro(start_us, 'UTC'), toUInt32({incarnation:UInt32} + restarts),
    multiIf(NOT stacks, 'go1.6', leak_check, 'go1.26', 'go1.18'), {source:String},
    fromUnixTimestamp64Milli({received_ms:Int64}, 'UTC'), trimRight(prefix_raw)
FROM
(
    SELECT
        *,
        {start_us:Int64}
            + if(restarts > 0 AND first_restart, {last_end_us:Int64} - {start_us:Int64}, 0)
            + closed_spans AS start_us
    FROM
    (
        SELECT
            *,
            sum(restart) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS restarts,
            first_value(restart) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS first_restart,
            sum(if(next_restart, since_us + clock_us, 0))
                OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS closed_spans
        FROM
        (
            SELECT
                *,
                leadInFrame(restart, 1, 1) OVER (ORDER BY seq ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_restart
            FROM
            (
                SELECT
                    *,
                    toInt64(round((stw_sweep_term_ms + mark_ms + stw_mark_term_ms) * 1000)) AS clock_us,
                    toUInt8(toInt64(gc_num) < lagInFrame(toInt64(gc_num), 1, {last_num:Int64})
                                OVER (ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                            OR since_us < lagInFrame(since_us, 1, {last_since_us:Int64})
                                OVER (ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) AS restart
                FROM
                (
    SELECT
        rowNumberInAllBlocks() AS seq,
        line,
        match(line, 'gc (?:\\d{1,9}) @(?:\\d{1,10})\\.(?:\\d+)s (?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])%(?: \\(checking for goroutine leaks\\))?: (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms clock, (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms cpu, (?:\\d{1,18})->(?:\\d{1,18})->(?:\\d{1,18}) MB, (?:\\d{1,18}) MB goal(?:, (?:\\d{1,18}) MB stacks, (?:\\d{1,18}) MB globals)?, (?:\\d{1,4}) P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$') AS shape,
        if(shape AND NOT startsWith(line, 'gc '),
           extract(line, '^(.*?)(?:gc #?\\d+ @|(?:forced )?scvg|scav \\d|pacer: )'), '') AS prefix_raw,
        shape AND isValidUTF8(line) AND match(prefix_raw, '^[ -~]*$') AS recognised,
        recognised AND position(line, '% (checking for goroutine leaks): ') > 0 AS leak_check,
        recognised AND match(line, ' MB stacks, \\d+ MB globals, \\d+ P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$') AS stacks,
        recognised AND match(line, ' P \\(forced\\)[ \\t\\r\\f\\v]*$') AS forced,
        if(recognised, extractAll(line, '\\d+(?:\\.\\d+)?'), []) AS nums,
        length(nums) - if(stacks, 18, 16) AS base,
        toUInt32OrZero(nums[base + 1]) AS gc_num,
        splitByChar('.', nums[base + 2]) AS since_parts,
        toUInt8OrZero(nums[base + 3]) AS gc_cpu_pct,
        toFloat64OrZero(nums[base + 4]) AS stw_sweep_term_ms,
        toFloat64OrZero(nums[base + 5]) AS mark_ms,
        toFloat64OrZero(nums[base + 6]) AS stw_mark_term_ms,
        toFloat64OrZero(nums[base + 7]) AS cpu_sweep_term_ms,
        toFloat64OrZero(nums[base + 8]) AS cpu_assist_ms,
        toFloat64OrZero(nums[base + 9]) AS cpu_background_ms,
        toFloat64OrZero(nums[base + 10]) AS cpu_idle_ms,
        toFloat64OrZero(nums[base + 11]) AS cpu_mark_term_ms,
        toUInt64OrZero(nums[base + 12]) AS heap_start_mb,
        toUInt64OrZero(nums[base + 13]) AS heap_end_mb,
        toUInt64OrZero(nums[base + 14]) AS heap_live_mb,
        toUInt64OrZero(nums[base + 15]) AS heap_goal_mb,
        toUInt64OrZero(nums[base + 16]) AS stacks_mb,
        toUInt64OrZero(nums[base + 17]) AS globals_mb,
        toUInt16OrZero(nums[-1]) AS procs,
        -- @T in exact microseconds: the first six digits of the fraction, padded (runtime_lines._frac_us).
        toInt64OrZero(since_parts[1]) * 1000000
            + toInt64OrZero(substring(concat(since_parts[2], '000000'), 1, 6)) AS since_us
    FROM input('line String')
                )
                WHERE NOT throwIf(NOT recognised, 'fleetwatch-fastpath: not a clean chunk')
            )
        )
    )
)
-- As sql/fastpath/gctrace_chunk.sql: one block, read in order; exact floats.
SETTINGS precise_float_parsing = 1, input_format_parallel_parsing = 0, max_threads = 1,
         max_block_size = 1073741824, max_insert_block_size = 1073741824,
         min_insert_block_size_rows = 1073741824, min_insert_block_size_bytes = 1099511627776
FORMAT LineAsString
