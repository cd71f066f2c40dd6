-- GC storm verdicts: one row per instance that ran at least one GC cycle in the window, flagged or not,
-- so that rerunning a window replaces every verdict of the first run (ReplacingMergeTree keyed by window;
-- readers use FINAL or argMax(..., computed_at)). docs/detections.md defines every column and threshold.
CREATE TABLE IF NOT EXISTS {{db}}.gc_storms {{on_cluster}}
(
    service           LowCardinality(String),
    instance          LowCardinality(String),
    window_start      DateTime64(3, 'UTC'),
    window_end        DateTime64(3, 'UTC'),
    storm             UInt8,                      -- sustained: hot in sustained_windows consecutive windows
    severity          LowCardinality(String),     -- none, warning, critical
    kind              LowCardinality(String),     -- '', allocation, limit_squeeze, leak_driven, misconfiguration
    hot               UInt8,                      -- this window alone meets a storm condition
    hot_windows       UInt16,                     -- hot windows among the last sustained_windows
    reason            String,                     -- the conditions that held, in words
    gc_count          UInt32,
    gc_per_s          Float64,
    gc_cpu_fraction   Float64,                    -- (assist + background + sweep term + mark term) / (wall x P)
    assist_share      Float64,                    -- assist CPU / (wall x P)
    assist_of_gc      Float64,                    -- assist CPU / GC CPU
    stw_p50_ms        Float64,                    -- over both pauses of every cycle (sweep term, mark term)
    stw_p99_ms        Float64,
    stw_max_ms        Float64,
    heap_live_mb      Float64,                    -- average live heap after mark
    heap_goal_mb      Float64,                    -- average goal
    live_vs_goal      Float64,
    goal_vs_live      Float64,
    heap_live_growth  Float64,                    -- relative change of the live heap over the sustained span
    heap_live_rho     Float64,                    -- Spearman rho of live heap vs time over that span
    forced_cycles     UInt32,
    procs             UInt16,
    memory_limit_mb   Nullable(Float64),          -- go.memory.limit when reported and finite
    gogc              Nullable(Float64),          -- go.config.gogc when reported
    run_id            String,
    computed_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{replicated}}ReplacingMergeTree(computed_at)
PARTITION BY toDate(window_start)
ORDER BY (service, instance, window_start)
TTL toDateTime(window_start) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
