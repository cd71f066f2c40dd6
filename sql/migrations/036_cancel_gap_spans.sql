-- Every span the cancel-gaps job evaluated, for drill-down: a descendant of a cancelled span that was still
-- running when the cancellation happened (or started after it), or a span that started after its trace's
-- root request had already ended. `is_overrun` marks the ones that kept running past the grace.
-- Written by sql/jobs/cancel_gaps.sql; a rerun over the same window replaces rows with the same
-- (child_service, bucket, trace_id, span_id), it never adds a second copy.
CREATE TABLE IF NOT EXISTS {{db}}.cancel_gap_spans {{on_cluster}}
(
    bucket            DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),  -- fixed bucket holding child_end
    trace_id          String CODEC(ZSTD(1)),
    span_id           String CODEC(ZSTD(1)),                    -- the child (the work that should stop)
    parent_span_id    String CODEC(ZSTD(1)),
    parent_service    LowCardinality(String),
    parent_operation  LowCardinality(String),
    child_service     LowCardinality(String),
    child_instance    LowCardinality(String),
    child_operation   LowCardinality(String),
    child_kind        LowCardinality(String),
    -- The cancellation this child is measured against: the earliest one among its ancestors (and itself,
    -- for cancel-events), or the end of the trace's root request for work started after it.
    origin            Enum8('span_status' = 1, 'cancel_event' = 2, 'root_ended' = 3),
    cause             LowCardinality(String),                   -- timeout, cancelled, parent_cancelled, root_ended
    cancel_span_id    String CODEC(ZSTD(1)),
    cancel_service    LowCardinality(String),
    cancel_operation  LowCardinality(String),
    cancel_at         DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    depth             UInt8,                                    -- hops from the cancelled span to the child
    child_start       DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    child_end         DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    grace_ms          Float64,
    overrun_ms        Float64,                                  -- child_end - cancel_at
    wasted_ms         Float64,                                  -- child time spent after cancel_at
    is_overrun        UInt8,                                    -- overrun_ms > grace_ms
    doomed_start      UInt8,                                    -- started more than grace_ms after cancel_at
    observed          UInt8,                                    -- the child has a parent_cancelled cancel-event
    observed_at       DateTime64(9, 'UTC') DEFAULT toDateTime64(0, 9, 'UTC'),
    propagation_ms    Float64 DEFAULT nan,                      -- observed_at - cancel_at, NaN when not observed
    run_id            String,
    computed_at       DateTime64(3, 'UTC')
)
ENGINE = {{replicated}}ReplacingMergeTree(computed_at)
PARTITION BY toDate(bucket)
ORDER BY (child_service, bucket, trace_id, span_id)
TTL bucket + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
