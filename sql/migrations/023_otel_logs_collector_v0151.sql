-- otel_logs in the OpenTelemetry Collector ClickHouse exporter's layout from v0.151.0 on (the current one):
-- no TimestampTime, partitions and key on Timestamp with a five-minute bucket first, so a time-only search
-- prunes granules; skip indexes on attribute keys and values and on lower(Body); the exporter's eight
-- materialized resource columns. Indexes are the exporter's bloom_filter/tokenbf_v1 variant (it picks
-- text indexes only on ClickHouse 26.2+; these work on every supported server and on chdb).
--
-- Stores created by 003 are migrated forward without losing a row: a new table is created, every row is
-- copied, the two are swapped, the copy is checked and only then is the old table dropped. Each step is
-- guarded by the state of the tables (see pipeline/store/migrate.py), so a run interrupted anywhere
-- re-runs safely: while otel_logs still has TimestampTime the copy is redone from scratch, once it has not
-- the copy and swap are skipped.
-- only if: otel_logs.TimestampTime exists
CREATE TABLE IF NOT EXISTS {{db}}.otel_logs_next {{on_cluster}}
(
    Timestamp          DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    TraceId            String CODEC(ZSTD(1)),
    SpanId             String CODEC(ZSTD(1)),
    TraceFlags         UInt8,
    SeverityText       LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber     UInt8,
    ServiceName        LowCardinality(String) CODEC(ZSTD(1)),
    Body               String CODEC(ZSTD(1)),
    ResourceSchemaUrl  LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl     LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName          String CODEC(ZSTD(1)),
    ScopeVersion       LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes    Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes      Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName          String CODEC(ZSTD(1)),
    `__otel_materialized_k8s.cluster.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.cluster.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.container.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.container.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.deployment.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.deployment.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.namespace.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.namespace.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.node.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.node.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.pod.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.pod.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.pod.uid` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.pod.uid'] CODEC(ZSTD(1)),
    `__otel_materialized_deployment.environment.name` LowCardinality(String) MATERIALIZED ResourceAttributes['deployment.environment.name'] CODEC(ZSTD(1)),
    -- Fleetwatch's own column (the default keeps the Collector's inserts working): OTLP's
    -- observed_time_unix_nano (0 when not sent), which the exporter's table has no place for.
    ObservedTimestamp  DateTime64(9, 'UTC') DEFAULT Timestamp CODEC(Delta(8), ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
TTL toDateTime(Timestamp) + INTERVAL {{ttl_days}} DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- A copy interrupted halfway is redone whole.
-- only if: otel_logs.TimestampTime exists
TRUNCATE TABLE IF EXISTS {{db}}.otel_logs_next {{on_cluster}};

-- only if: otel_logs.TimestampTime exists
INSERT INTO {{db}}.otel_logs_next
    (Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body, ResourceSchemaUrl,
     ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, LogAttributes, EventName)
SELECT Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body, ResourceSchemaUrl,
       ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, LogAttributes, EventName
FROM {{db}}.otel_logs
SETTINGS distributed_foreground_insert = 1, insert_deduplicate = 0;

-- only if: otel_logs.TimestampTime exists
EXCHANGE TABLES {{db}}.otel_logs AND {{db}}.otel_logs_next {{on_cluster}};

-- From here otel_logs is the new table and otel_logs_next the old one: check the copy before dropping it.
-- only if: otel_logs_next.TimestampTime exists
SELECT throwIf((SELECT count() FROM {{db}}.otel_logs) < (SELECT count() FROM {{db}}.otel_logs_next),
               'otel_logs: fewer rows after the copy than before; the old table is kept as otel_logs_next');

-- only if: otel_logs_next.TimestampTime exists
DROP TABLE IF EXISTS {{db}}.otel_logs_next {{on_cluster}} SYNC;
