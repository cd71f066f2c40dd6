-- Fast path for gctrace streams (pipeline/sources/gctrace_fast.py): the raw lines of one batch, staged in
-- memory and parsed once by the engine as they are inserted. One table per stream, emptied after every batch
-- and dropped when the stream ends; seq is the line's index in the batch.
--
-- `g` holds the fields of a well-formed Go 1.6+ gc summary line whose numbers fit their columns, or nothing.
-- The regex is runtime_lines.GC_STEPS with bounded digit counts (gc number < 10^9, percent <= 255,
-- P count < 10^4, sizes < 10^18, @T < 10^10 s, phases < 10^12 ms), so every line it accepts is one the Python
-- normalizer turns into a gc_events row with the same values; the other lines go to that normalizer, the
-- reference. The typed columns below name every group once; nothing else addresses `g` by position.
CREATE TABLE IF NOT EXISTS {{db}}.{stage:Identifier}
(
    seq                UInt32,
    line               String,
    g                  Array(String) MATERIALIZED extractGroups(line, 'gc (\\d{1,9}) @(\\d{1,10})\\.(\\d+)s (\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])%( \\(checking for goroutine leaks\\))?: (\\d{1,12}(?:\\.\\d+)?)\\+(\\d{1,12}(?:\\.\\d+)?)\\+(\\d{1,12}(?:\\.\\d+)?) ms clock, (\\d{1,12}(?:\\.\\d+)?)\\+(\\d{1,12}(?:\\.\\d+)?)/(\\d{1,12}(?:\\.\\d+)?)/(\\d{1,12}(?:\\.\\d+)?)\\+(\\d{1,12}(?:\\.\\d+)?) ms cpu, (\\d{1,18})->(\\d{1,18})->(\\d{1,18}) MB, (\\d{1,18}) MB goal(?:, (\\d{1,18}) MB stacks, (\\d{1,18}) MB globals)?, (\\d{1,4}) P( \\(forced\\))?\\r?$'),
    recognised         UInt8 MATERIALIZED notEmpty(g),
    gc_num             UInt32 MATERIALIZED toUInt32OrZero(g[1]),
    since_s            String MATERIALIZED g[2],
    since_frac         String MATERIALIZED g[3],
    gc_cpu_pct         UInt8 MATERIALIZED toUInt8OrZero(g[4]),
    leak_check         UInt8 MATERIALIZED g[5] != '',
    stw_sweep_term_ms  Float64 MATERIALIZED toFloat64OrZero(g[6]),
    mark_ms            Float64 MATERIALIZED toFloat64OrZero(g[7]),
    stw_mark_term_ms   Float64 MATERIALIZED toFloat64OrZero(g[8]),
    cpu_sweep_term_ms  Float64 MATERIALIZED toFloat64OrZero(g[9]),
    cpu_assist_ms      Float64 MATERIALIZED toFloat64OrZero(g[10]),
    cpu_background_ms  Float64 MATERIALIZED toFloat64OrZero(g[11]),
    cpu_idle_ms        Float64 MATERIALIZED toFloat64OrZero(g[12]),
    cpu_mark_term_ms   Float64 MATERIALIZED toFloat64OrZero(g[13]),
    heap_start_mb      UInt64 MATERIALIZED toUInt64OrZero(g[14]),
    heap_end_mb        UInt64 MATERIALIZED toUInt64OrZero(g[15]),
    heap_live_mb       UInt64 MATERIALIZED toUInt64OrZero(g[16]),
    heap_goal_mb       UInt64 MATERIALIZED toUInt64OrZero(g[17]),
    stacks_mb          Nullable(UInt64) MATERIALIZED if(g[18] = '', NULL, toUInt64OrZero(g[18])),
    globals_mb         Nullable(UInt64) MATERIALIZED if(g[19] = '', NULL, toUInt64OrZero(g[19])),
    procs              UInt16 MATERIALIZED toUInt16OrZero(g[20]),
    forced             UInt8 MATERIALIZED g[21] != '',
    -- @T in exact microseconds: the first six digits of the fraction, padded (runtime_lines._frac_us).
    since_us           Int64 MATERIALIZED toInt64OrZero(since_s) * 1000000
                                          + toInt64OrZero(substring(concat(since_frac, '000000'), 1, 6)),
    -- The cycle's wall-clock duration, rounded half to even like Python's round().
    clock_us           Int64 MATERIALIZED toInt64(round((stw_sweep_term_ms + mark_ms + stw_mark_term_ms) * 1000)),
    format             String MATERIALIZED multiIf(g[18] = '', 'go1.6', g[5] != '', 'go1.26', 'go1.18')
)
ENGINE = Memory
