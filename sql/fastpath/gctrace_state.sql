-- The stream clock within one span of gctrace_insert.sql (same parameters, same window), after every
-- recognised line that the next line of the batch does not follow as a recognised one (the Python normalizer
-- handles the lines in between with this clock), and after the span's last: the cycle's number and @T, its
-- incarnation, that incarnation's start and the end of the cycle.
SELECT
    seq,
    gc_num,
    since_us,
    toUInt32({incarnation:UInt32} + restarts) AS incarnation,
    start_us,
    start_us + since_us + clock_us AS end_us
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
                leadInFrame(restart, 1, 1) OVER (ORDER BY seq ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_restart,
                leadInFrame(seq, 1, 0) OVER (ORDER BY seq ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_seq
            FROM
            (
                SELECT
                    seq, gc_num, since_us, clock_us,
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
WHERE next_seq != seq + 1
ORDER BY seq
