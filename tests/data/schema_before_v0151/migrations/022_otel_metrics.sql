-- OTLP metric points that are not Go runtime metrics (those go to runtime_metrics under canonical names).
-- One table for every point type rather than the Collector exporter's five, because Fleetwatch only keeps
-- them for context next to the runtime data: names follow the exporter's (MetricName, Attributes,
-- TimeUnix, Value, ...), so its queries adapt by adding `MetricType = '...'`.
--   Value  gauge and sum: the point's value. histogram, exponential histogram and summary: the sum.
--   Count/Sum/Min/Max  histograms and summaries (Min/Max NaN when the producer did not send them).
--   BucketCounts/ExplicitBounds  explicit-bucket histograms only.
CREATE TABLE IF NOT EXISTS {{db}}.otel_metrics {{on_cluster}}
(
    ServiceName            LowCardinality(String) CODEC(ZSTD(1)),
    ServiceInstance        LowCardinality(String) CODEC(ZSTD(1)),
    MetricName             LowCardinality(String) CODEC(ZSTD(1)),
    MetricDescription      String CODEC(ZSTD(1)),
    MetricUnit             LowCardinality(String) CODEC(ZSTD(1)),
    MetricType             Enum8('gauge' = 1, 'sum' = 2, 'histogram' = 3, 'exponential_histogram' = 4, 'summary' = 5),
    Attributes             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceAttributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName              String CODEC(ZSTD(1)),
    ScopeVersion           LowCardinality(String) CODEC(ZSTD(1)),
    StartTimeUnix          DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    TimeUnix               DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    Value                  Float64 CODEC(Gorilla, ZSTD(1)),
    Count                  UInt64 CODEC(T64, ZSTD(1)),
    Sum                    Float64 CODEC(ZSTD(1)),
    Min                    Float64 CODEC(ZSTD(1)),
    Max                    Float64 CODEC(ZSTD(1)),
    BucketCounts           Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds         Array(Float64) CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    IsMonotonic            Bool,
    Flags                  UInt32,
    received_at            DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, ServiceInstance, TimeUnix)
TTL toDateTime(TimeUnix) + INTERVAL {{ttl_days}} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
