-- The recognised lines of one span (seq {first}..{last}) of a stage table -> gc_events, with the stream
-- clock of pipeline/normalize/gctrace._StreamClock (fixed start): a line whose cycle number or @T goes back
-- opens a new incarnation, which starts where the previous one's last cycle ended. The clock state before the
-- run comes as parameters (start_us, last_end_us, incarnation, last_num, last_since_us);
-- gctrace_state.sql reads the states within and after it with the same window. The other lines of the
-- span cannot make gc rows (gctrace_fast.py checks), so they do not move the clock.
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    )
SELECT
    {service:String}, {instance:String}, fromUnixTimestamp64Micro(start_us + since_us, 'UTC'), gc_num,
    toFloat64(since_us) / 1e6, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms, cpu_sweep_term_ms,
    cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb, heap_end_mb, heap_live_mb,
    heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, fromUnixTimestamp64Micro(start_us, 'UTC'),
    toUInt32({incarnation:UInt32} + restarts), format, {source:String},
    fromUnixTimestamp64Milli({received_ms:Int64}, 'UTC'), line_prefix
FROM
(
    SELECT
        *,
        -- Incarnations opened before this row within the run, and the spans (@T + clock) of their last cycles.
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
                    seq, gc_num, since_us, clock_us, gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms,
                    cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms,
                    heap_start_mb, heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced,
                    leak_check, format, line_prefix,
                    toUInt8(toInt64(gc_num) < lagInFrame(toInt64(gc_num), 1, {last_num:Int64})
                                OVER (ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                            OR since_us < lagInFrame(since_us, 1, {last_since_us:Int64})
                                OVER (ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) AS restart
                FROM {{db}}.{stage:Identifier}
                WHERE recognised AND seq BETWEEN {first:UInt32} AND {last:UInt32}
            )
        )
    )
)
