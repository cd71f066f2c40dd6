-- The profile tables as agreed between profile intake and profile detections (column names are the
-- contract). Tests create them only where the intake's migration has not (IF NOT EXISTS), so detection
-- tests run against the same columns before and after the intake lands.
CREATE TABLE IF NOT EXISTS {{db}}.profile_stacks
(
    stack_id UInt64, functions Array(String), files Array(String), lines Array(UInt32),
    first_seen DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree ORDER BY stack_id;
CREATE TABLE IF NOT EXISTS {{db}}.profile_snapshots
(
    service LowCardinality(String), instance LowCardinality(String), ts DateTime64(3, 'UTC'),
    snapshot_id String, profile_type LowCardinality(String), source LowCardinality(String),
    format LowCardinality(String), total_goroutines UInt64, sample_period Int64, duration_ns Int64,
    process_start DateTime64(3, 'UTC'), go_version String
)
ENGINE = MergeTree ORDER BY (service, instance, ts);
CREATE TABLE IF NOT EXISTS {{db}}.goroutine_samples
(
    service LowCardinality(String), instance LowCardinality(String), ts DateTime64(3, 'UTC'),
    snapshot_id String, profile_type LowCardinality(String), stack_id UInt64, goroutines UInt64,
    wait_reason LowCardinality(String), wait_minutes UInt32, site_function String, site_file String,
    site_line UInt32, created_by_function String, created_by_file String, created_by_line UInt32, leaked UInt8
)
ENGINE = MergeTree ORDER BY (service, instance, ts);
CREATE TABLE IF NOT EXISTS {{db}}.heap_samples
(
    service LowCardinality(String), instance LowCardinality(String), ts DateTime64(3, 'UTC'),
    snapshot_id String, profile_type LowCardinality(String), stack_id UInt64, alloc_objects Int64,
    alloc_space Int64, inuse_objects Int64, inuse_space Int64, site_function String, site_file String,
    site_line UInt32
)
ENGINE = MergeTree ORDER BY (service, instance, ts);
