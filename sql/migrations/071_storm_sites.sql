-- Storm sites: for each storm window in gc_storms, the instance's top allocation sites by allocation rate
-- (bytes/s from the cumulative alloc_space of consecutive heap/allocs profiles of one process), written by
-- sql/jobs/storm_sites.sql. Keyed like gc_storms plus the rank, so a rerun of the window replaces its rows.
CREATE TABLE IF NOT EXISTS {{db}}.storm_sites {{on_cluster}}
(
    service              LowCardinality(String),
    instance             LowCardinality(String),
    window_start         DateTime64(3, 'UTC'),
    window_end           DateTime64(3, 'UTC'),
    rank                 UInt16,                      -- 1 = allocates the most bytes per second
    function             String,                      -- the allocating frame (first outside the runtime)
    file                 String,
    line                 UInt32,
    bytes_per_sec        Float64,                     -- sampled, scaled by the profile (see MemProfileRate)
    objects_per_sec      Float64,
    share                Float64,                     -- of the instance's allocated bytes over the same span
    instance_bytes_per_sec Float64,                   -- the whole instance, every site
    span_seconds         Float64,                     -- profile-to-profile time the rates cover
    pairs                UInt32,                      -- consecutive snapshot pairs used (restarts excluded)
    example_stack_id     UInt64,
    run_id               String,
    computed_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{replicated}}ReplacingMergeTree(computed_at)
PARTITION BY toDate(window_start)
ORDER BY (service, instance, window_start, rank)
TTL toDateTime(window_start) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
