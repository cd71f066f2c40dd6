-- observed_batch.sql for a Kafka gctrace batch of one plain line per message (pipeline/sources/kafka/gctrace_engine.py,
-- `one_line_input`): the batch is one RowBinary row of three columns, built with no Python step per message: the
-- record times in milliseconds (Array(Int64), packed by `array`), each message's identity index into
-- {services}/{instances} (Array(UInt32), likewise) and the values joined by line breaks (one `bytes.join`). ARRAY JOIN
-- pairs the i-th time, identity and line; a gc row depends only on those three, so the rows are those of
-- observed_batch.sql, and of the reference, for the same messages (tests/integration/test_kafka_gctrace_one_statement.py).
-- Everything else is observed_batch.sql's, in the fragment both include (fastpath/observed_gc_rows.sql): the
-- observed-time clock, the recognition, the refusal of the whole batch (throwIf, nothing stored) when a line is not
-- one it takes, one block under the batch's token, {witness}.
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    , ingest_batch)
WITH observed_lines AS
(
    SELECT ident, observed_ms * 1000 AS observed_us, line
    FROM input('observed_ms Array(Int64), idents Array(UInt32), lines String')
    ARRAY JOIN observed_ms, idents AS ident, splitByChar('\n', lines) AS line
)
{{include fastpath/observed_gc_rows.sql}}
FORMAT RowBinary
