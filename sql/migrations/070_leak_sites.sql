-- Leak sites: per instance, evaluation window and goroutine site (the creating call plus the blocking
-- frame), whether goroutines pile up there, from the goroutine profiles in goroutine_samples (written by
-- sql/jobs/leak_sites.sql). One row per evaluated site, flagged or not, so a rerun of the window replaces
-- the first run's rows (ReplacingMergeTree keyed by window and site). docs/detections.md defines each column.
CREATE TABLE IF NOT EXISTS {{db}}.leak_sites {{on_cluster}}
(
    service              LowCardinality(String),
    instance             LowCardinality(String),
    window_start         DateTime64(3, 'UTC'),
    window_end           DateTime64(3, 'UTC'),
    site_id              UInt64,                      -- cityHash64 of the site key below
    function             String,                      -- the blocking frame (first frame outside the runtime)
    file                 String,
    line                 UInt32,
    created_by           String,                      -- 'function file:line' of the `go` statement, '' unknown
    wait_reason          LowCardinality(String),      -- chan receive, select, semacquire, ... ('' unknown)
    leaking              UInt8,                       -- at least one kind of evidence below holds
    evidence             Array(LowCardinality(String)),  -- leak_profile, growing_site, long_wait
    severity             LowCardinality(String),      -- none, warning, critical
    goroutines           UInt64,                      -- at the latest snapshot (leak profile when only there)
    leaked_goroutines    UInt64,                      -- reported by the goroutineleak profile (latest)
    first_floor          Float64,                     -- first bucket's minimum count
    last_floor           Float64,                     -- latest bucket's minimum count
    growth_per_hour      Float64,                     -- OLS slope of the bucket floors, goroutines per hour
    floor_rho            Float64,                     -- Spearman rho of the bucket floors vs time
    n_snapshots          UInt32,                      -- goroutine snapshots of this incarnation evaluated
    oldest_wait_minutes  UInt32,                      -- longest wait reported at the latest snapshot
    example_stack_id     UInt64,
    example_stack        String,                      -- frames leaf first, one 'function file:line' a line
    run_id               String,
    computed_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{replicated}}ReplacingMergeTree(computed_at)
PARTITION BY toDate(window_start)
ORDER BY (service, instance, window_start, site_id)
TTL toDateTime(window_start) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
