-- Go profiles (pprof protobuf, goroutine text dumps, SIGQUIT/panic tracebacks) as deduplicated stacks and
-- per-snapshot samples. Column names are a contract with the profile detections (leak_sites, storm_sites);
-- docs/schema.md documents every column and its unit.

-- One row per distinct stack. stack_id is a stable hash of the frames' (function, file, line), leaf first,
-- computed by the normalizer, so every door and every snapshot agree on it. Rows are re-inserted by every
-- snapshot that contains the stack; ReplacingMergeTree keeps one per stack (the latest last_seen), and the
-- TTL drops stacks no snapshot has used for ttl_days.
CREATE TABLE IF NOT EXISTS {{db}}.profile_stacks {{on_cluster}}
(
    stack_id    UInt64,
    functions   Array(String) CODEC(ZSTD(3)),
    files       Array(String) CODEC(ZSTD(3)),
    lines       Array(UInt32) CODEC(ZSTD(3)),
    first_seen  DateTime64(3, 'UTC'),            -- ts of the snapshot that wrote this version of the row
    last_seen   DateTime64(3, 'UTC')
)
ENGINE = {{replicated}}ReplacingMergeTree(last_seen)
ORDER BY stack_id
TTL toDateTime(last_seen) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- One row per profile taken (scraped, ingested from a file, or read from Kafka).
CREATE TABLE IF NOT EXISTS {{db}}.profile_snapshots {{on_cluster}}
(
    service           LowCardinality(String),
    instance          LowCardinality(String),
    ts                DateTime64(3, 'UTC'),            -- when the profile was taken
    snapshot_id       String,                          -- hash of service/instance/profile_type/ts/content
    profile_type      LowCardinality(String),          -- goroutine, goroutineleak, allocs, heap
    source            LowCardinality(String),          -- scrape, file, kafka
    format            LowCardinality(String),          -- pprof, debug1, debug2, traceback
    total_goroutines  UInt64,                          -- goroutine kinds: goroutines in the profile
    sample_period     Int64,                           -- heap kinds: MemProfileRate (bytes per sample)
    duration_ns       Int64,
    process_start     DateTime64(3, 'UTC'),            -- epoch when unknown
    go_version        String,                          -- '' when unknown
    stacks            UInt32,                          -- distinct stacks in the profile
    bytes             UInt64,                          -- size of the profile as received
    received_at       DateTime64(3, 'UTC')
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Goroutine and goroutineleak profiles: one row per (snapshot, stack, wait reason, wait-minutes bucket).
CREATE TABLE IF NOT EXISTS {{db}}.goroutine_samples {{on_cluster}}
(
    service              LowCardinality(String),
    instance             LowCardinality(String),
    ts                   DateTime64(3, 'UTC'),
    snapshot_id          String,
    profile_type         LowCardinality(String),       -- goroutine, goroutineleak
    stack_id             UInt64,
    goroutines           UInt64,
    wait_reason          LowCardinality(String),       -- 'chan receive', 'select', ...; '' when not given
    wait_minutes         UInt32,                       -- 0 when not given or under a minute; max when aggregated
    site_function        String,                       -- the blocking site: first frame past the wait plumbing
    site_file            String,
    site_line            UInt32,
    created_by_function  String,                       -- '' when the format does not say
    created_by_file      String,
    created_by_line      UInt32,
    leaked               UInt8                         -- goroutineleak profile, or the dump's leak marker
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- allocs and heap profiles: cumulative counters since process start, per stack, as the profile gives them.
CREATE TABLE IF NOT EXISTS {{db}}.heap_samples {{on_cluster}}
(
    service        LowCardinality(String),
    instance       LowCardinality(String),
    ts             DateTime64(3, 'UTC'),
    snapshot_id    String,
    profile_type   LowCardinality(String),             -- allocs, heap
    stack_id       UInt64,
    alloc_objects  Int64,
    alloc_space    Int64,                              -- bytes
    inuse_objects  Int64,
    inuse_space    Int64,                              -- bytes
    site_function  String,                             -- the allocating site: first frame past runtime/plumbing
    site_file      String,
    site_line      UInt32
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- The profile bytes exactly as received, for `fleetwatch pprof export` (shorter retention of its own).
CREATE TABLE IF NOT EXISTS {{db}}.profile_raw {{on_cluster}}
(
    service       LowCardinality(String),
    instance      LowCardinality(String),
    ts            DateTime64(3, 'UTC'),
    snapshot_id   String,
    profile_type  LowCardinality(String),
    format        LowCardinality(String),
    data          String CODEC(ZSTD(3))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, profile_type, ts)
TTL toDateTime(ts) + INTERVAL {{profile_raw_ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- One row per scrape attempt of one profile of one target, successful or not.
CREATE TABLE IF NOT EXISTS {{db}}.scrapes {{on_cluster}}
(
    target        String,                              -- the URL fetched
    service       LowCardinality(String),
    instance      LowCardinality(String),
    profile_type  LowCardinality(String),
    started       DateTime64(3, 'UTC'),
    duration_ms   UInt32,
    status        LowCardinality(String),              -- ok, not_supported, http_error, timeout, bad_profile,
                                                       -- too_large, refused, error
    http_status   UInt16,                              -- 0 when no answer
    error         String,
    bytes         UInt64,
    snapshot_id   String DEFAULT ''
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(started)
ORDER BY (service, instance, started)
TTL toDateTime(started) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
