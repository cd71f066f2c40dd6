-- Everything rejected anywhere in the pipeline, with the reason. Nothing is dropped silently:
-- a line, message or record that cannot be stored as data is stored here as text.
CREATE TABLE IF NOT EXISTS {{db}}.quarantine {{on_cluster}}
(
    received_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    source      LowCardinality(String),          -- file, kafka, otlp_grpc, otlp_http
    signal      LowCardinality(String),          -- gctrace, cancel_event, otlp_logs, otlp_spans, otlp_metrics
    service     LowCardinality(String),
    instance    LowCardinality(String),
    reason      String,
    raw         String CODEC(ZSTD(3)),           -- the rejected input, truncated to 64 KiB
    raw_bytes   UInt32,                          -- its size before truncation
    location    String DEFAULT '',               -- file:line, HTTP path, request id
    topic       LowCardinality(String) DEFAULT '',
    partition   Int32 DEFAULT -1,
    offset      Int64 DEFAULT -1
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(received_at)
ORDER BY (signal, service, received_at)
TTL toDateTime(received_at) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
