-- gc_events' nine Float64 columns were compressed with Gorilla before ZSTD(1). Gorilla XORs a value with the one
-- before it, which suits slowly drifting readings; gctrace's figures are short decimals (0.012 ms, 11 ms) that jump
-- from cycle to cycle, and their XORed bit patterns are what ZSTD then compresses worse. Measured on ~19,000 real gc
-- lines (every capture of tests/data/go-runtime and a real GOGC=1 storm): 42.2 bytes per row with Gorilla, 21.0
-- without it; the insert and every merge also skip the Gorilla pass (docs/benchmarks.md, "gc_events' codecs").
-- The integer and time columns keep their Delta/DoubleDelta, which do help there. Only the codec changes: existing
-- parts keep theirs until they are merged, no data is rewritten, and the statement is idempotent.
ALTER TABLE {{db}}.gc_events {{on_cluster}}
    MODIFY COLUMN since_start_s Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN stw_sweep_term_ms Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN mark_ms Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN stw_mark_term_ms Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN cpu_sweep_term_ms Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN cpu_assist_ms Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN cpu_background_ms Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN cpu_idle_ms Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN cpu_mark_term_ms Float64 CODEC(ZSTD(1));
