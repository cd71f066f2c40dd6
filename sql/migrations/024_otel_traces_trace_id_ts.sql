-- The Collector ClickHouse exporter's trace-id lookup: one row per trace (per insert block) with the
-- first and last span start, kept by a materialized view on otel_traces. The Grafana ClickHouse plugin
-- reads `<traces table>_trace_id_ts` to bound "open trace by id" to the trace's own time range instead
-- of scanning every partition of the retention window (and fails with UNKNOWN_TABLE before 4.14 when
-- it is missing). Layout as in the exporter's traces_id_ts_lookup_table.sql / _mv.sql.
CREATE TABLE IF NOT EXISTS {{db}}.otel_traces_trace_id_ts {{on_cluster}}
(
    TraceId String CODEC(ZSTD(1)),
    Start   DateTime CODEC(Delta, ZSTD(1)),
    End     DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
TTL Start + INTERVAL {{ttl_days}} DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Spans stored before this migration: their traces get lookup rows too. The view starts with the next
-- insert; rows added twice (a re-run) are harmless, readers take min(Start) and max(End).
-- only if: otel_traces_trace_id_ts_mv missing
INSERT INTO {{db}}.otel_traces_trace_id_ts (TraceId, Start, End)
SELECT TraceId, min(Timestamp), max(Timestamp) FROM {{db}}.otel_traces WHERE TraceId != '' GROUP BY TraceId
SETTINGS distributed_foreground_insert = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.otel_traces_trace_id_ts_mv {{on_cluster}}
TO {{db}}.otel_traces_trace_id_ts
AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM {{db}}.otel_traces
WHERE TraceId != ''
GROUP BY TraceId;

-- The exporter's current otel_traces indexes that 020 did not have.
ALTER TABLE {{db}}.otel_traces {{on_cluster}}
    ADD INDEX IF NOT EXISTS idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE {{db}}.otel_traces {{on_cluster}}
    ADD INDEX IF NOT EXISTS idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1;

-- What OTLP carries that the exporter's otel_traces has no column for, kept as Fleetwatch's own columns
-- (defaults keep the Collector's inserts working): schema URLs, scope attributes, the span's flags
-- (W3C trace flags and the remote-parent bits) and the dropped counts.
ALTER TABLE {{db}}.otel_traces {{on_cluster}}
    ADD COLUMN IF NOT EXISTS ResourceSchemaUrl LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS ScopeSchemaUrl LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS SpanFlags UInt32 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS DroppedAttributesCount UInt32 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS DroppedEventsCount UInt32 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS DroppedLinksCount UInt32 DEFAULT 0;
