-- The Kafka source's batch plans: before a partition batch [start_offset, end_offset) is written, its
-- boundaries are recorded here. A worker that takes the partition over after a crash or a rebalance finds
-- the plan that starts at the committed offset and replays exactly that range, so the replay carries the
-- same deduplication token and ClickHouse drops whatever had already landed (docs/kafka.md, "Delivery").
-- Plans are inserted with the token plan/<group>/<topic>/<partition>/<start>: the first plan for a start
-- offset is the only one stored, which makes two workers racing on one partition agree on one range.
CREATE TABLE IF NOT EXISTS {{db}}.kafka_batches {{on_cluster}}
(
    group_id      LowCardinality(String),
    topic         LowCardinality(String),
    partition     Int32,
    start_offset  Int64 CODEC(Delta(8), ZSTD(1)),
    end_offset    Int64 CODEC(Delta(8), ZSTD(1)),
    messages      UInt32,
    planned_by    LowCardinality(String) DEFAULT '',
    planned_at    DateTime64(6, 'UTC') DEFAULT now64(6) CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(planned_at)
ORDER BY (group_id, topic, partition, start_offset)
TTL toDateTime(planned_at) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
