-- gc_events' columns compress with LZ4 instead of ZSTD(1); Delta and DoubleDelta stay on the integers and times.
-- Every ingest path (file, Kafka, OTLP) ends in a typed insert into this table and the background merges of its
-- parts, and on two cores that write is a share of every path's CPU per line. Measured with
-- `python -m bench.merge_cost --parts 100 --rounds 3` (100 inserts of 100,000 parsed rows, 10 M rows, each variant
-- against the other codecs in the same round, nine rounds; docs/benchmarks.md, "gc_events' write and merge cost:
-- codecs and merge settings"): insert + merges 0.01-0.93 CPU s per M rows less (median 0.35), the merges about a
-- quarter cheaper per rewritten row, the GC-storm job's read 6 % cheaper and a scan of every row 8 % dearer
-- (medians of the pairs), and 1.59x the bytes on disk per row of real gctrace (21.7 -> 34.4,
-- `python -m bench.codec_bytes`). Dropping Delta/DoubleDelta as well, or ZSTD without them, cost more CPU or
-- more bytes; merge settings and compact parts alone did not beat the load's noise. Only the codec changes:
-- existing parts keep ZSTD(1) until they are merged, no data is rewritten, and the statement is idempotent.
ALTER TABLE {{db}}.gc_events {{on_cluster}}
    MODIFY COLUMN ts DateTime64(6, 'UTC') CODEC(DoubleDelta, LZ4),
    MODIFY COLUMN gc_num UInt32 CODEC(Delta(4), LZ4),
    MODIFY COLUMN since_start_s Float64 CODEC(LZ4),
    MODIFY COLUMN gc_cpu_pct UInt8 CODEC(LZ4),
    MODIFY COLUMN stw_sweep_term_ms Float64 CODEC(LZ4),
    MODIFY COLUMN mark_ms Float64 CODEC(LZ4),
    MODIFY COLUMN stw_mark_term_ms Float64 CODEC(LZ4),
    MODIFY COLUMN cpu_sweep_term_ms Float64 CODEC(LZ4),
    MODIFY COLUMN cpu_assist_ms Float64 CODEC(LZ4),
    MODIFY COLUMN cpu_background_ms Float64 CODEC(LZ4),
    MODIFY COLUMN cpu_idle_ms Float64 CODEC(LZ4),
    MODIFY COLUMN cpu_mark_term_ms Float64 CODEC(LZ4),
    MODIFY COLUMN heap_start_mb UInt64 CODEC(Delta(8), LZ4),
    MODIFY COLUMN heap_end_mb UInt64 CODEC(Delta(8), LZ4),
    MODIFY COLUMN heap_live_mb UInt64 CODEC(Delta(8), LZ4),
    MODIFY COLUMN heap_goal_mb Nullable(UInt64) CODEC(LZ4),
    MODIFY COLUMN stacks_mb Nullable(UInt64) CODEC(LZ4),
    MODIFY COLUMN globals_mb Nullable(UInt64) CODEC(LZ4),
    MODIFY COLUMN procs UInt16 CODEC(LZ4),
    MODIFY COLUMN process_start DateTime64(6, 'UTC') CODEC(DoubleDelta, LZ4),
    MODIFY COLUMN received_at DateTime64(3, 'UTC') CODEC(DoubleDelta, LZ4);
