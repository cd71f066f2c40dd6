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
-- pipeline/witness.py).
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    , ingest_batch)
WITH observed_lines AS
(
    SELECT ident, observed_us,
           arrayJoin(if(endsWith(value, '\n'), arrayPopBack(splitByChar('\n', value)), splitByChar('\n', value))) AS line
    FROM input('observed_us Int64, ident UInt32, value String')
)
{{include fastpath/observed_gc_rows.sql}}
FORMAT RowBinary
