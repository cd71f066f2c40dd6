-- Fast path for gctrace streams (pipeline/sources/gctrace_fast.py): the raw lines of one batch, staged in
-- memory and parsed once by the engine as they are inserted. One table per stream, emptied after every batch
-- and dropped when the stream ends; seq is the line's index in the batch.
--
-- A line is recognised when it is a well-formed Go 1.6+ gc summary line whose numbers fit their columns:
-- the regexes are runtime_lines.GC_STEPS (without and with the leak-check marker) with bounded digit counts (gc number < 10^9, percent <= 255,
-- P count < 10^4, sizes < 10^18, @T < 10^10 s, phases < 10^12 ms), so every line it accepts is one the Python
-- normalizer turns into a gc_events row with the same values; the other lines go to that normalizer, the
-- reference. The fields are then read from the line's numbers (extractAll, several times cheaper than
-- extractGroups with this regex): the regex is anchored at the end and its match is the only one in the line,
-- so the last 16 numbers (18 with stacks and globals) are the gc line's, whatever a log shipper put before.
-- The typed columns below name every position once; nothing else addresses `nums` by position.
CREATE TABLE IF NOT EXISTS {{db}}.{stage:Identifier}
(
    seq                UInt32,
    line               String,
    leak_form          UInt8 MATERIALIZED match(line, 'gc (?:\\d{1,9}) @(?:\\d{1,10})\\.(?:\\d+)s (?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])% \\(checking for goroutine leaks\\): (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms clock, (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms cpu, (?:\\d{1,18})->(?:\\d{1,18})->(?:\\d{1,18}) MB, (?:\\d{1,18}) MB goal(?:, (?:\\d{1,18}) MB stacks, (?:\\d{1,18}) MB globals)?, (?:\\d{1,4}) P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$'),
    shape              UInt8 MATERIALIZED leak_form OR match(line, 'gc (?:\\d{1,9}) @(?:\\d{1,10})\\.(?:\\d+)s (?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])%: (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms clock, (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms cpu, (?:\\d{1,18})->(?:\\d{1,18})->(?:\\d{1,18}) MB, (?:\\d{1,18}) MB goal(?:, (?:\\d{1,18}) MB stacks, (?:\\d{1,18}) MB globals)?, (?:\\d{1,4}) P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$'),
    -- What a log shipper wrote in front of the gc line (runtime_lines.line_prefix); a prefix with anything but
    -- printable ASCII goes to Python, whose notion of whitespace and digits is wider than RE2's.
    prefix_raw         String MATERIALIZED if(shape AND NOT startsWith(line, 'gc '),
                                              extract(line, '^(.*?)(?:gc #?\\d+ @|(?:forced )?scvg|scav \\d|pacer: )'), ''),
    recognised         UInt8 MATERIALIZED shape AND match(prefix_raw, '^[ -~]*$'),
    line_prefix        String MATERIALIZED trimRight(prefix_raw),
    leak_check         UInt8 MATERIALIZED recognised AND leak_form,
    stacks             UInt8 MATERIALIZED recognised AND match(line, ' MB stacks, \\d+ MB globals, \\d+ P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$'),
    forced             UInt8 MATERIALIZED recognised AND match(line, ' P \\(forced\\)[ \\t\\r\\f\\v]*$'),
    nums               Array(String) MATERIALIZED if(recognised, extractAll(line, '\\d+(?:\\.\\d+)?'), []),
    base               UInt32 MATERIALIZED length(nums) - if(stacks, 18, 16),
    gc_num             UInt32 MATERIALIZED toUInt32OrZero(nums[base + 1]),
    since_s            String MATERIALIZED splitByChar('.', nums[base + 2])[1],
    since_frac         String MATERIALIZED splitByChar('.', nums[base + 2])[2],
    gc_cpu_pct         UInt8 MATERIALIZED toUInt8OrZero(nums[base + 3]),
    stw_sweep_term_ms  Float64 MATERIALIZED toFloat64OrZero(nums[base + 4]),
    mark_ms            Float64 MATERIALIZED toFloat64OrZero(nums[base + 5]),
    stw_mark_term_ms   Float64 MATERIALIZED toFloat64OrZero(nums[base + 6]),
    cpu_sweep_term_ms  Float64 MATERIALIZED toFloat64OrZero(nums[base + 7]),
    cpu_assist_ms      Float64 MATERIALIZED toFloat64OrZero(nums[base + 8]),
    cpu_background_ms  Float64 MATERIALIZED toFloat64OrZero(nums[base + 9]),
    cpu_idle_ms        Float64 MATERIALIZED toFloat64OrZero(nums[base + 10]),
    cpu_mark_term_ms   Float64 MATERIALIZED toFloat64OrZero(nums[base + 11]),
    heap_start_mb      UInt64 MATERIALIZED toUInt64OrZero(nums[base + 12]),
    heap_end_mb        UInt64 MATERIALIZED toUInt64OrZero(nums[base + 13]),
    heap_live_mb       UInt64 MATERIALIZED toUInt64OrZero(nums[base + 14]),
    heap_goal_mb       UInt64 MATERIALIZED toUInt64OrZero(nums[base + 15]),
    stacks_mb          Nullable(UInt64) MATERIALIZED if(stacks, toUInt64OrZero(nums[base + 16]), NULL),
    globals_mb         Nullable(UInt64) MATERIALIZED if(stacks, toUInt64OrZero(nums[base + 17]), NULL),
    procs              UInt16 MATERIALIZED toUInt16OrZero(nums[-1]),
    -- @T in exact microseconds: the first six digits of the fraction, padded (runtime_lines._frac_us).
    since_us           Int64 MATERIALIZED toInt64OrZero(since_s) * 1000000
                                          + toInt64OrZero(substring(concat(since_frac, '000000'), 1, 6)),
    -- The cycle's wall-clock duration, rounded half to even like Python's round().
    clock_us           Int64 MATERIALIZED toInt64(round((stw_sweep_term_ms + mark_ms + stw_mark_term_ms) * 1000)),
    format             String MATERIALIZED multiIf(NOT stacks, 'go1.6', leak_check, 'go1.26', 'go1.18')
)
ENGINE = Memory
