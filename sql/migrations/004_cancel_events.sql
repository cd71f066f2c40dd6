-- CancelTrace cancel-events: one row per context cancellation a service observed.
-- cause: timeout (deadline exceeded), cancelled (explicit cancel or client gone), parent_cancelled
-- (the cancellation arrived from the caller's context).
CREATE TABLE IF NOT EXISTS {{db}}.cancel_events {{on_cluster}}
(
    service      LowCardinality(String),
    instance     LowCardinality(String),
    trace_id     String CODEC(ZSTD(1)),
    span_id      String CODEC(ZSTD(1)),
    cancel_at    DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    cause        Enum8('timeout' = 1, 'cancelled' = 2, 'parent_cancelled' = 3),
    stack_depth  UInt16,
    operation    LowCardinality(String) DEFAULT '',   -- span name or route, when the producer sends one
    attributes   Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    source       LowCardinality(String),              -- kafka, otlp_grpc, otlp_http, file
    received_at  DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(cancel_at)
ORDER BY (service, instance, cancel_at)
TTL toDateTime(cancel_at) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
