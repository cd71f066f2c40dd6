-- One row per job run over one window: what ran, over which window, how it went. The scheduler's
-- watermark for a job is the latest window_end of its successful runs, so this table IS the scheduler's
-- state: nothing else needs to survive a restart.
CREATE TABLE IF NOT EXISTS {{db}}.job_runs {{on_cluster}}
(
    job           LowCardinality(String),
    window_start  DateTime64(3, 'UTC'),
    window_end    DateTime64(3, 'UTC'),
    run_id        String,
    host          LowCardinality(String),
    status        Enum8('ok' = 1, 'error' = 2, 'skipped' = 3),
    rows_written  UInt64,
    duration_s    Float64,
    error         String CODEC(ZSTD(3)),
    started_at    DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    finished_at   DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(started_at)
ORDER BY (job, window_end, started_at)
TTL toDateTime(started_at) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Claims on (job, window) so that several workers against one server do not all compute the same window.
-- ClickHouse has no compare-and-set; a worker inserts its claim, reads the claims back and proceeds only if
-- its own is the earliest live one (server clock). Two claims racing on a replicated cluster may both win:
-- that only costs duplicate work, because job outputs are ReplacingMergeTree keyed by window.
CREATE TABLE IF NOT EXISTS {{db}}.job_leases {{on_cluster}}
(
    job           LowCardinality(String),
    window_start  DateTime64(3, 'UTC'),
    holder        String,
    claimed_at    DateTime64(6, 'UTC') DEFAULT now64(6),
    expires_at    DateTime64(3, 'UTC')
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(claimed_at)
ORDER BY (job, window_start, claimed_at)
TTL toDateTime(claimed_at) + INTERVAL 1 DAY
SETTINGS non_replicated_deduplication_window = 10000;
