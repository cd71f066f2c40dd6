-- Leak trend verdicts: per instance, signal (goroutines, heap_live) and evaluation window, the trend of the
-- current process incarnation's floor series (bucket minima) over the lookback. One row per evaluated
-- series, flagged or not, so a rerun of the window replaces the first run's verdicts.
CREATE TABLE IF NOT EXISTS {{db}}.leak_trends {{on_cluster}}
(
    service            LowCardinality(String),
    instance           LowCardinality(String),
    signal             LowCardinality(String),    -- goroutines, heap_live
    unit               LowCardinality(String),    -- goroutines, MiB
    window_start       DateTime64(3, 'UTC'),
    window_end         DateTime64(3, 'UTC'),
    leaking            UInt8,
    severity           LowCardinality(String),    -- none, warning, critical
    reason             String,
    segment_start      DateTime64(3, 'UTC'),      -- first bucket of this incarnation (after a restart)
    n_buckets          UInt32,
    first_floor        Float64,
    last_floor         Float64,
    median_floor       Float64,
    sen_slope_per_hour Float64,                   -- Theil-Sen: median of pairwise slopes
    ols_slope_per_hour Float64,
    relative_growth    Float64,                   -- (last - first) / first floor
    mk_z               Float64,                   -- Mann-Kendall Z (no tie or autocorrelation correction)
    spearman_rho       Float64,
    limit_value        Nullable(Float64),         -- go.memory.limit (MiB) or the goroutine ceiling
    hours_to_limit     Nullable(Float64),
    run_id             String,
    computed_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{replicated}}ReplacingMergeTree(computed_at)
PARTITION BY toDate(window_start)
ORDER BY (service, instance, signal, window_start)
TTL toDateTime(window_start) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
