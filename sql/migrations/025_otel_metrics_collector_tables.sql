-- Metric points in the OpenTelemetry Collector ClickHouse exporter's five tables (layout of its
-- metrics_*_table.sql templates as of v0.152): otel_metrics_gauge, _sum,
-- _histogram, _exponential_histogram and _summary. Every point OTLP carries is stored as sent, Go runtime
-- metrics included (they also go to runtime_metrics under canonical names). Fleetwatch's own columns:
--   ServiceInstance  the resource's instance identity (service.instance.id, else host.name:process.pid);
--   ZeroThreshold    exponential histograms only: the zero bucket's width, which the exporter drops;
--   received_at      when Fleetwatch received the point.
-- Min/Max are NaN when the producer did not send them (the exporter writes 0).

CREATE TABLE IF NOT EXISTS {{db}}.otel_metrics_gauge {{on_cluster}}
(
    ResourceAttributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl      String CODEC(ZSTD(1)),
    ScopeName              String CODEC(ZSTD(1)),
    ScopeVersion           String CODEC(ZSTD(1)),
    ScopeAttributes        Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount  UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl         String CODEC(ZSTD(1)),
    ServiceName            LowCardinality(String) CODEC(ZSTD(1)),
    MetricName             String CODEC(ZSTD(1)),
    MetricDescription      String CODEC(ZSTD(1)),
    MetricUnit             String CODEC(ZSTD(1)),
    Attributes             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    TimeUnix               DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    Value                  Float64 CODEC(ZSTD(1)),
    Flags                  UInt32 CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ) CODEC(ZSTD(1)),
    -- Fleetwatch's own columns; their defaults keep the Collector's inserts working.
    ServiceInstance        LowCardinality(String) DEFAULT ResourceAttributes['service.instance.id'] CODEC(ZSTD(1)),
    ZeroThreshold          Float64 DEFAULT 0 CODEC(ZSTD(1)),
    received_at            DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
TTL toDateTime(TimeUnix) + INTERVAL {{ttl_days}} DAY
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {{db}}.otel_metrics_sum {{on_cluster}}
(
    ResourceAttributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl      String CODEC(ZSTD(1)),
    ScopeName              String CODEC(ZSTD(1)),
    ScopeVersion           String CODEC(ZSTD(1)),
    ScopeAttributes        Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount  UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl         String CODEC(ZSTD(1)),
    ServiceName            LowCardinality(String) CODEC(ZSTD(1)),
    MetricName             String CODEC(ZSTD(1)),
    MetricDescription      String CODEC(ZSTD(1)),
    MetricUnit             String CODEC(ZSTD(1)),
    Attributes             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    TimeUnix               DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    Value                  Float64 CODEC(ZSTD(1)),
    Flags                  UInt32 CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ) CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    IsMonotonic            Boolean CODEC(Delta, ZSTD(1)),
    -- Fleetwatch's own columns; their defaults keep the Collector's inserts working.
    ServiceInstance        LowCardinality(String) DEFAULT ResourceAttributes['service.instance.id'] CODEC(ZSTD(1)),
    ZeroThreshold          Float64 DEFAULT 0 CODEC(ZSTD(1)),
    received_at            DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
TTL toDateTime(TimeUnix) + INTERVAL {{ttl_days}} DAY
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {{db}}.otel_metrics_histogram {{on_cluster}}
(
    ResourceAttributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl      String CODEC(ZSTD(1)),
    ScopeName              String CODEC(ZSTD(1)),
    ScopeVersion           String CODEC(ZSTD(1)),
    ScopeAttributes        Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount  UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl         String CODEC(ZSTD(1)),
    ServiceName            LowCardinality(String) CODEC(ZSTD(1)),
    MetricName             String CODEC(ZSTD(1)),
    MetricDescription      String CODEC(ZSTD(1)),
    MetricUnit             String CODEC(ZSTD(1)),
    Attributes             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    TimeUnix               DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    Count                  UInt64 CODEC(Delta, ZSTD(1)),
    Sum                    Float64 CODEC(ZSTD(1)),
    BucketCounts           Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds         Array(Float64) CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ) CODEC(ZSTD(1)),
    Flags                  UInt32 CODEC(ZSTD(1)),
    Min                    Float64 CODEC(ZSTD(1)),
    Max                    Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    -- Fleetwatch's own columns; their defaults keep the Collector's inserts working.
    ServiceInstance        LowCardinality(String) DEFAULT ResourceAttributes['service.instance.id'] CODEC(ZSTD(1)),
    ZeroThreshold          Float64 DEFAULT 0 CODEC(ZSTD(1)),
    received_at            DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
TTL toDateTime(TimeUnix) + INTERVAL {{ttl_days}} DAY
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {{db}}.otel_metrics_exponential_histogram {{on_cluster}}
(
    ResourceAttributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl      String CODEC(ZSTD(1)),
    ScopeName              String CODEC(ZSTD(1)),
    ScopeVersion           String CODEC(ZSTD(1)),
    ScopeAttributes        Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount  UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl         String CODEC(ZSTD(1)),
    ServiceName            LowCardinality(String) CODEC(ZSTD(1)),
    MetricName             String CODEC(ZSTD(1)),
    MetricDescription      String CODEC(ZSTD(1)),
    MetricUnit             String CODEC(ZSTD(1)),
    Attributes             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    TimeUnix               DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    Count                  UInt64 CODEC(Delta, ZSTD(1)),
    Sum                    Float64 CODEC(ZSTD(1)),
    Scale                  Int32 CODEC(ZSTD(1)),
    ZeroCount              UInt64 CODEC(ZSTD(1)),
    PositiveOffset         Int32 CODEC(ZSTD(1)),
    PositiveBucketCounts   Array(UInt64) CODEC(ZSTD(1)),
    NegativeOffset         Int32 CODEC(ZSTD(1)),
    NegativeBucketCounts   Array(UInt64) CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ) CODEC(ZSTD(1)),
    Flags                  UInt32 CODEC(ZSTD(1)),
    Min                    Float64 CODEC(ZSTD(1)),
    Max                    Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    -- Fleetwatch's own columns; their defaults keep the Collector's inserts working.
    ServiceInstance        LowCardinality(String) DEFAULT ResourceAttributes['service.instance.id'] CODEC(ZSTD(1)),
    ZeroThreshold          Float64 DEFAULT 0 CODEC(ZSTD(1)),
    received_at            DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
TTL toDateTime(TimeUnix) + INTERVAL {{ttl_days}} DAY
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {{db}}.otel_metrics_summary {{on_cluster}}
(
    ResourceAttributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl      String CODEC(ZSTD(1)),
    ScopeName              String CODEC(ZSTD(1)),
    ScopeVersion           String CODEC(ZSTD(1)),
    ScopeAttributes        Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount  UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl         String CODEC(ZSTD(1)),
    ServiceName            LowCardinality(String) CODEC(ZSTD(1)),
    MetricName             String CODEC(ZSTD(1)),
    MetricDescription      String CODEC(ZSTD(1)),
    MetricUnit             String CODEC(ZSTD(1)),
    Attributes             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    TimeUnix               DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    Count                  UInt64 CODEC(Delta, ZSTD(1)),
    Sum                    Float64 CODEC(ZSTD(1)),
    ValueAtQuantiles Nested (
        Quantile Float64,
        Value    Float64
    ) CODEC(ZSTD(1)),
    Flags                  UInt32 CODEC(ZSTD(1)),
    -- Fleetwatch's own columns; their defaults keep the Collector's inserts working.
    ServiceInstance        LowCardinality(String) DEFAULT ResourceAttributes['service.instance.id'] CODEC(ZSTD(1)),
    ZeroThreshold          Float64 DEFAULT 0 CODEC(ZSTD(1)),
    received_at            DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {{replicated}}MergeTree
TTL toDateTime(TimeUnix) + INTERVAL {{ttl_days}} DAY
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- Stores created by 022 kept every point in one otel_metrics table: its rows are copied into the five
-- tables by type, checked, and the old table dropped. Each step is guarded by the old table's presence,
-- so an interrupted run is redone whole (the five tables are emptied first: nothing else writes to them
-- before the migrations have run). Exponential-histogram buckets and summary quantiles other than 0 and 1
-- were never stored there and cannot be recovered.
-- only if: otel_metrics.MetricType exists
TRUNCATE TABLE IF EXISTS {{db}}.otel_metrics_gauge {{on_cluster}};
-- only if: otel_metrics.MetricType exists
TRUNCATE TABLE IF EXISTS {{db}}.otel_metrics_sum {{on_cluster}};
-- only if: otel_metrics.MetricType exists
TRUNCATE TABLE IF EXISTS {{db}}.otel_metrics_histogram {{on_cluster}};
-- only if: otel_metrics.MetricType exists
TRUNCATE TABLE IF EXISTS {{db}}.otel_metrics_exponential_histogram {{on_cluster}};
-- only if: otel_metrics.MetricType exists
TRUNCATE TABLE IF EXISTS {{db}}.otel_metrics_summary {{on_cluster}};

-- only if: otel_metrics.MetricType exists
INSERT INTO {{db}}.otel_metrics_gauge (ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Value)
SELECT ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Value
FROM {{db}}.otel_metrics WHERE MetricType = 'gauge'
SETTINGS distributed_foreground_insert = 1, insert_deduplicate = 0;

-- only if: otel_metrics.MetricType exists
INSERT INTO {{db}}.otel_metrics_sum (ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Value, AggregationTemporality, IsMonotonic)
SELECT ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Value, AggregationTemporality, IsMonotonic
FROM {{db}}.otel_metrics WHERE MetricType = 'sum'
SETTINGS distributed_foreground_insert = 1, insert_deduplicate = 0;

-- only if: otel_metrics.MetricType exists
INSERT INTO {{db}}.otel_metrics_histogram (ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Count, Sum, BucketCounts, ExplicitBounds, Min, Max, AggregationTemporality)
SELECT ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Count, Sum, BucketCounts, ExplicitBounds, Min, Max, AggregationTemporality
FROM {{db}}.otel_metrics WHERE MetricType = 'histogram'
SETTINGS distributed_foreground_insert = 1, insert_deduplicate = 0;

-- only if: otel_metrics.MetricType exists
INSERT INTO {{db}}.otel_metrics_exponential_histogram (ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Count, Sum, Min, Max, AggregationTemporality)
SELECT ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Count, Sum, Min, Max, AggregationTemporality
FROM {{db}}.otel_metrics WHERE MetricType = 'exponential_histogram'
SETTINGS distributed_foreground_insert = 1, insert_deduplicate = 0;

-- only if: otel_metrics.MetricType exists
INSERT INTO {{db}}.otel_metrics_summary (ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Count, Sum, `ValueAtQuantiles.Quantile`, `ValueAtQuantiles.Value`)
SELECT ResourceAttributes, ScopeName, ScopeVersion, ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, StartTimeUnix, TimeUnix, Flags, received_at, Count, Sum, arrayConcat(if(isNaN(Min), [], [0.]), if(isNaN(Max), [], [1.])), arrayConcat(if(isNaN(Min), [], [Min]), if(isNaN(Max), [], [Max]))
FROM {{db}}.otel_metrics WHERE MetricType = 'summary'
SETTINGS distributed_foreground_insert = 1, insert_deduplicate = 0;

-- only if: otel_metrics.MetricType exists
SELECT throwIf((SELECT count() FROM {{db}}.otel_metrics_gauge) + (SELECT count() FROM {{db}}.otel_metrics_sum)
               + (SELECT count() FROM {{db}}.otel_metrics_histogram)
               + (SELECT count() FROM {{db}}.otel_metrics_exponential_histogram)
               + (SELECT count() FROM {{db}}.otel_metrics_summary) < (SELECT count() FROM {{db}}.otel_metrics),
               'otel_metrics: fewer rows in the five tables than in the old one; the old table is kept');

-- only if: otel_metrics.MetricType exists
DROP TABLE IF EXISTS {{db}}.otel_metrics {{on_cluster}} SYNC;
