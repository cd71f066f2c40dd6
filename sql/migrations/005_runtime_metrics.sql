-- Go runtime metrics from every vocabulary (OTel semconv go.*, the deprecated process.runtime.go.* and
-- runtime.go.*, Prometheus go_*), one row per data point under one canonical name per signal.
-- `metric` is the canonical name (docs/schema.md lists the mapping), `source_name` what the producer sent.
CREATE TABLE IF NOT EXISTS {{db}}.runtime_metrics {{on_cluster}}
(
    service       LowCardinality(String),
    instance      LowCardinality(String),
    ts            DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    metric        LowCardinality(String),
    value         Float64 CODEC(Gorilla, ZSTD(1)),
    unit          LowCardinality(String),
    source_name   LowCardinality(String),
    attributes    Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    process_start DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC'),  -- process.start_time when known
    received_at   DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, metric, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
