-- Prototype measured by the bench ("parse in ClickHouse"): raw gc lines go into a Null-engine table and a
-- materialized view extracts the fields with the same regular expression pipeline/normalize/runtime_lines.py
-- uses for Go 1.6+ summary lines, writing gc_events. Python only reads lines and sends them as one column
-- (plus constants per file). Not the product path: it ignores restarts (incarnations), repairs of split
-- lines and the quarantine of unreadable ones, which the Python normalizer handles.
CREATE TABLE IF NOT EXISTS {{db}}.bench_gc_lines
(
    service        LowCardinality(String),
    instance       LowCardinality(String),
    process_start  DateTime64(6, 'UTC'),
    received_at    DateTime64(3, 'UTC'),
    line           String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.bench_gc_lines_mv TO {{db}}.gc_events AS
SELECT
    service,
    instance,
    process_start + toIntervalMicrosecond(toUInt64(g[2]) * 1000000 + toUInt64(substring(rightPad(g[3], 6, '0'), 1, 6))) AS ts,
    toUInt32(g[1]) AS gc_num,
    toFloat64(concat(g[2], '.', g[3])) AS since_start_s,
    toUInt8(g[4]) AS gc_cpu_pct,
    toFloat64(g[6]) AS stw_sweep_term_ms,
    toFloat64(g[7]) AS mark_ms,
    toFloat64(g[8]) AS stw_mark_term_ms,
    toFloat64(g[9]) AS cpu_sweep_term_ms,
    toFloat64(g[10]) AS cpu_assist_ms,
    toFloat64(g[11]) AS cpu_background_ms,
    toFloat64(g[12]) AS cpu_idle_ms,
    toFloat64(g[13]) AS cpu_mark_term_ms,
    toUInt32(g[14]) AS heap_start_mb,
    toUInt32(g[15]) AS heap_end_mb,
    toUInt32(g[16]) AS heap_live_mb,
    toUInt32(g[17]) AS heap_goal_mb,
    if(g[18] = '', NULL, toUInt32(g[18])) AS stacks_mb,
    if(g[19] = '', NULL, toUInt32(g[19])) AS globals_mb,
    toUInt16(g[20]) AS procs,
    toUInt8(g[21] != '') AS forced,
    toUInt8(g[5] != '') AS leak_check,
    process_start,
    toUInt32(1) AS incarnation,
    multiIf(g[18] = '', 'go1.6', g[5] != '', 'go1.26', 'go1.18') AS format,
    'file' AS source,
    received_at
FROM
(
    SELECT *, extractGroups(line, 'gc (\\d+) @(\\d+)\\.(\\d+)s (\\d+)%( \\(checking for goroutine leaks\\))?: (\\d+(?:\\.\\d+)?)\\+(\\d+(?:\\.\\d+)?)\\+(\\d+(?:\\.\\d+)?) ms clock, (\\d+(?:\\.\\d+)?)\\+(\\d+(?:\\.\\d+)?)/(\\d+(?:\\.\\d+)?)/(\\d+(?:\\.\\d+)?)\\+(\\d+(?:\\.\\d+)?) ms cpu, (\\d+)->(\\d+)->(\\d+) MB, (\\d+) MB goal(?:, (\\d+) MB stacks, (\\d+) MB globals)?, (\\d+) P( \\(forced\\))?\\r?$') AS g
    FROM {{db}}.bench_gc_lines
)
WHERE length(g) > 0;
