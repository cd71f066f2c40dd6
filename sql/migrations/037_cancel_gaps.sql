-- Cancel-propagation gaps per call edge (parent service + operation -> child service + operation) and
-- fixed time bucket: how many cancellations reached the edge, how many children kept running past the
-- grace, how long and how much child time was wasted, and whether the child saw the cancellation at all.
-- Aggregated from cancel_gap_spans by sql/jobs/cancel_gaps.sql; a rerun replaces a bucket's rows.
CREATE TABLE IF NOT EXISTS {{db}}.cancel_gaps {{on_cluster}}
(
    bucket              DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    bucket_seconds      UInt32,
    parent_service      LowCardinality(String),
    parent_operation    LowCardinality(String),
    child_service       LowCardinality(String),
    child_operation     LowCardinality(String),
    cancellations       UInt64,     -- children evaluated against a cancellation (or a root that had ended)
    overruns            UInt64,     -- ... that kept running more than the grace after it
    doomed_starts       UInt64,     -- ... that even started after it
    overrun_share       Float64,    -- overruns / cancellations
    p50_overrun_ms      Float64,    -- over the overruns only
    p99_overrun_ms      Float64,
    max_overrun_ms      Float64,
    wasted_child_ms     Float64,    -- child time after the cancellation, summed over overruns
    observed            UInt64,     -- children with their own parent_cancelled cancel-event
    observed_share      Float64,
    p50_propagation_ms  Float64,    -- cancellation -> child's parent_cancelled event; NaN when none observed
    p99_propagation_ms  Float64,
    instances           UInt32,     -- child instances evaluated
    affected_instances  Array(String),  -- child instances with overruns, most wasted time first (max 10)
    example_trace_id    String,     -- the trace of the longest overrun
    flagged             UInt8,      -- overruns >= cancel_min_overruns and overrun_share >= cancel_min_overrun_share
    run_id              String,
    computed_at         DateTime64(3, 'UTC')
)
ENGINE = {{replicated}}ReplacingMergeTree(computed_at)
PARTITION BY toDate(bucket)
ORDER BY (child_service, bucket, child_operation, parent_service, parent_operation)
TTL bucket + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
