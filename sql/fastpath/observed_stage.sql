-- Fast path for gctrace lines from Kafka (pipeline/sources/kafka/gctrace_engine.py): every raw-text line of one
-- partition batch, staged in memory with its observed time (the record timestamp, in microseconds) and its
-- (service, instance) (`ident`: its index in the arrays observed_insert.sql is given). One table per Kafka worker, emptied before every batch, dropped when the worker stops.
--
-- `recognised` is the file fast path's test (gctrace_stage.sql, the same regexes): a well-formed Go 1.6+ gc summary
-- line whose numbers fit their columns, after a printable-ASCII shipper prefix, in valid UTF-8. Every line it
-- accepts is one the reference turns into a gc_events row; the fields are read by observed_insert.sql, only for
-- the recognised lines, so the stage materializes nothing else.
CREATE TABLE IF NOT EXISTS {{db}}.{stage:Identifier}
(
    seq          UInt32,
    ident        UInt32,
    observed_us  Int64,
    line         String,
    leak_form    UInt8 MATERIALIZED match(line, 'gc (?:\\d{1,9}) @(?:\\d{1,10})\\.(?:\\d+)s (?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])% \\(checking for goroutine leaks\\): (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms clock, (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms cpu, (?:\\d{1,18})->(?:\\d{1,18})->(?:\\d{1,18}) MB, (?:\\d{1,18}) MB goal(?:, (?:\\d{1,18}) MB stacks, (?:\\d{1,18}) MB globals)?, (?:\\d{1,4}) P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$'),
    shape        UInt8 MATERIALIZED leak_form OR match(line, 'gc (?:\\d{1,9}) @(?:\\d{1,10})\\.(?:\\d+)s (?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])%: (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms clock, (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms cpu, (?:\\d{1,18})->(?:\\d{1,18})->(?:\\d{1,18}) MB, (?:\\d{1,18}) MB goal(?:, (?:\\d{1,18}) MB stacks, (?:\\d{1,18}) MB globals)?, (?:\\d{1,4}) P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$'),
    prefix_raw   String MATERIALIZED if(shape AND NOT startsWith(line, 'gc '),
                                    extract(line, '^(.*?)(?:gc #?\\d+ @|(?:forced )?scvg|scav \\d|pacer: )'), ''),
    recognised   UInt8 MATERIALIZED shape AND isValidUTF8(line) AND match(prefix_raw, '^[ -~]*$')
)
ENGINE = Memory
