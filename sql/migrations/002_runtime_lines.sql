-- Go runtime trace lines (GODEBUG=gctrace=1|2, gcpacertrace=1, scavtrace=1) as typed rows.
-- docs/schema.md documents every column and its unit; gc_events' column names are a public contract.

-- One row per completed GC cycle (one gctrace summary line). ts is the start of the cycle.
CREATE TABLE IF NOT EXISTS {{db}}.gc_events {{on_cluster}}
(
    service            LowCardinality(String),
    instance           LowCardinality(String),
    ts                 DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    gc_num             UInt32 CODEC(Delta(4), ZSTD(1)),
    since_start_s      Float64 CODEC(Gorilla, ZSTD(1)),
    gc_cpu_pct         UInt8 CODEC(ZSTD(1)),
    stw_sweep_term_ms  Float64 CODEC(Gorilla, ZSTD(1)),
    mark_ms            Float64 CODEC(Gorilla, ZSTD(1)),
    stw_mark_term_ms   Float64 CODEC(Gorilla, ZSTD(1)),
    cpu_sweep_term_ms  Float64 CODEC(Gorilla, ZSTD(1)),
    cpu_assist_ms      Float64 CODEC(Gorilla, ZSTD(1)),
    cpu_background_ms  Float64 CODEC(Gorilla, ZSTD(1)),
    cpu_idle_ms        Float64 CODEC(Gorilla, ZSTD(1)),
    cpu_mark_term_ms   Float64 CODEC(Gorilla, ZSTD(1)),
    heap_start_mb      UInt64 CODEC(Delta(8), ZSTD(1)),
    heap_end_mb        UInt64 CODEC(Delta(8), ZSTD(1)),
    heap_live_mb       UInt64 CODEC(Delta(8), ZSTD(1)),
    heap_goal_mb       Nullable(UInt64) CODEC(ZSTD(1)),      -- NULL: a Go 1.5 development build without it
    stacks_mb          Nullable(UInt64) CODEC(ZSTD(1)),      -- NULL before Go 1.18
    globals_mb         Nullable(UInt64) CODEC(ZSTD(1)),      -- NULL before Go 1.18
    procs              UInt16 CODEC(ZSTD(1)),
    forced             UInt8,
    leak_check         UInt8,                                -- "(checking for goroutine leaks)", Go 1.26+
    process_start      DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    incarnation        UInt32,                               -- restart counter within one ingested stream
    format             LowCardinality(String),               -- go1.5, go1.6, go1.18, go1.26: shape of the line
    source             LowCardinality(String),               -- file, stdin, kafka, otlp_grpc, otlp_http
    received_at        DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Scavenger trace lines (memory returned to the OS), every wording from Go 1.5 to 1.27.
CREATE TABLE IF NOT EXISTS {{db}}.scavenger_events {{on_cluster}}
(
    service            LowCardinality(String),
    instance           LowCardinality(String),
    ts                 DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    kind               LowCardinality(String),               -- scav, scvg_released, scvg_stats
    format             LowCardinality(String),               -- go1.21, go1.19, go1.15, go1.14, go1.13, go1.12
    work_bg_kib        Nullable(UInt64) CODEC(ZSTD(1)),
    work_eager_kib     Nullable(UInt64) CODEC(ZSTD(1)),
    released_kib       Nullable(UInt64) CODEC(ZSTD(1)),      -- level: heap memory currently released to the OS
    util_pct           Nullable(UInt8) CODEC(ZSTD(1)),
    generation         Nullable(Int64) CODEC(ZSTD(1)),       -- scav generation (1.15-1.18) or scvg round (<=1.12)
    released_delta_mb  Nullable(UInt64) CODEC(ZSTD(1)),      -- "scvg: N MB released"
    inuse_mb           Nullable(UInt64) CODEC(ZSTD(1)),
    idle_mb            Nullable(UInt64) CODEC(ZSTD(1)),
    sys_mb             Nullable(UInt64) CODEC(ZSTD(1)),
    consumed_mb        Nullable(UInt64) CODEC(ZSTD(1)),
    forced             UInt8,
    controller_reset   UInt8,
    after_gc_num       UInt32 CODEC(Delta(4), ZSTD(1)),      -- number of the last gc line seen before this one
    process_start      DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    incarnation        UInt32,
    source             LowCardinality(String),
    received_at        DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- GC pacer trace lines: cycle start (assist), cycle end (end, or end_old before Go 1.18), sweep done.
CREATE TABLE IF NOT EXISTS {{db}}.pacer_events {{on_cluster}}
(
    service              LowCardinality(String),
    instance             LowCardinality(String),
    ts                   DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    kind                 LowCardinality(String),             -- assist, end, end_old, sweep_done
    assist_ratio         Nullable(Float64) CODEC(ZSTD(1)),
    scan_mb              Nullable(UInt64) CODEC(ZSTD(1)),
    heap_live_start_mb   Nullable(UInt64) CODEC(ZSTD(1)),
    heap_goal_mb         Nullable(UInt64) CODEC(ZSTD(1)),
    workers_dedicated    Nullable(UInt32) CODEC(ZSTD(1)),
    workers_fractional   Nullable(Float64) CODEC(ZSTD(1)),
    cpu_util_pct         Nullable(Float64) CODEC(ZSTD(1)),
    cpu_util_goal_pct    Nullable(Float64) CODEC(ZSTD(1)),
    heap_scan_work_b     Nullable(Int64) CODEC(ZSTD(1)),
    stack_scan_work_b    Nullable(Int64) CODEC(ZSTD(1)),
    globals_scan_work_b  Nullable(Int64) CODEC(ZSTD(1)),
    expected_work_b      Nullable(Int64) CODEC(ZSTD(1)),
    heap_trigger_b       Nullable(Int64) CODEC(ZSTD(1)),
    heap_live_b          Nullable(Int64) CODEC(ZSTD(1)),
    goal_delta_b         Nullable(Int64) CODEC(ZSTD(1)),
    cons_mark            Nullable(Float64) CODEC(ZSTD(1)),
    sweep_heap_mb        Nullable(UInt64) CODEC(ZSTD(1)),
    sweep_allocated_mb   Nullable(UInt64) CODEC(ZSTD(1)),
    swept_pages          Nullable(UInt64) CODEC(ZSTD(1)),
    pages_per_byte       Nullable(Float64) CODEC(ZSTD(1)),
    controller_reset     UInt8,
    fields               Map(LowCardinality(String), Float64) CODEC(ZSTD(1)),  -- every key=value of end_old lines
    after_gc_num         UInt32 CODEC(Delta(4), ZSTD(1)),
    process_start        DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    incarnation          UInt32,
    source               LowCardinality(String),
    received_at          DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Other runtime lines that share the stream: "GC forced", gctrace=2 "scan:" statistics, SCHED, init,
-- checkfinalizers, "runtime: ..." warnings. Kept verbatim, classified by kind.
CREATE TABLE IF NOT EXISTS {{db}}.runtime_notices {{on_cluster}}
(
    service        LowCardinality(String),
    instance       LowCardinality(String),
    ts             DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    kind           LowCardinality(String),   -- gc_forced, scan, sched, init, checkfinalizers, runtime_warning
    raw            String CODEC(ZSTD(3)),
    after_gc_num   UInt32 CODEC(Delta(4), ZSTD(1)),
    process_start  DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    incarnation    UInt32,
    source         LowCardinality(String),
    received_at    DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
