-- Spans. Column names and types follow the OpenTelemetry Collector ClickHouse exporter's otel_traces
-- table, so the Grafana ClickHouse plugin's trace view and queries written for the Collector work here.
-- Ids are lowercase hex. Duration is in nanoseconds. SpanKind is Unspecified|Internal|Server|Client|
-- Producer|Consumer and StatusCode Unset|Ok|Error, spelled as the exporter spells them.
-- Two columns are Fleetwatch's own (defaults keep inserts from the Collector working):
--   ServiceInstance  the resource's instance identity (service.instance.id, else host.name:process.pid);
--   RpcStatusCode    the gRPC status name (OK, CANCELLED, DEADLINE_EXCEEDED, ...) from whichever of
--                    rpc.grpc.status_code, rpc.response.status_code or rpc.status_code the span carries.
CREATE TABLE IF NOT EXISTS {{db}}.otel_traces {{on_cluster}}
(
    Timestamp          DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    TraceId            String CODEC(ZSTD(1)),
    SpanId             String CODEC(ZSTD(1)),
    ParentSpanId       String CODEC(ZSTD(1)),
    TraceState         String CODEC(ZSTD(1)),
    SpanName           LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind           LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName        LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName          String CODEC(ZSTD(1)),
    ScopeVersion       String CODEC(ZSTD(1)),
    SpanAttributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration           UInt64 CODEC(T64, ZSTD(1)),
    StatusCode         LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage      String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp  DateTime64(9, 'UTC'),
        Name       LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId    String,
        SpanId     String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ServiceInstance    LowCardinality(String) DEFAULT ResourceAttributes['service.instance.id'] CODEC(ZSTD(1)),
    RpcStatusCode      LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_parent_span_id ParentSpanId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
TTL toDateTime(Timestamp) + INTERVAL {{ttl_days}} DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
