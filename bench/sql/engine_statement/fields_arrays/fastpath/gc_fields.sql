-- A form tried and not kept (bench.engine_statement; docs/benchmarks.md "The engine statement, second round"):
-- every number converted once, as Array(Float64) and Array(UInt64), the fields picked from those.
-- The fields of a recognised gc summary line, as a SELECT-list fragment included by the fast paths' statements
-- (an `include` placeholder, pipeline/sqlfiles.py): one definition of which of the line's numbers is
-- which field. The including statement defines `nums` (every number of the line, in order: extractAll of
-- '\d+(?:\.\d+)?', so every element is a valid decimal), `stacks` (the Go 1.18+ form with stacks and globals) and
-- `base` (how many numbers come before the gc line's: the match is anchored at the end of the line, so the last 16
-- numbers, 18 with stacks and globals, are its own).
--
-- The numbers are converted once per line, as two arrays, and the fields picked from those: picking a String out
-- of `nums` copies it, and 18 such picks with a conversion each cost ~0.5 CPU s per M lines more (docs/benchmarks.md
-- "The engine statement, second round"). `as_float`: every number as Float64, parsed exactly as Python's float() (the
-- statements set precise_float_parsing); `as_int`: every number as UInt64 (0 for one with a fraction), so the
-- integer fields, up to 18 digits, take no float detour. @T is read as a Decimal64 with six places, whose stored
-- integer is the exact microseconds: the first six digits of the fraction, padded (runtime_lines._frac_us).
-- The trailing `since_us` has no comma: the including statement goes on with its FROM.
CAST(nums AS Array(Float64)) AS as_float,
arrayMap(x -> toUInt64OrZero(x), nums) AS as_int,
toUInt32(as_int[base + 1]) AS gc_num,
toUInt8(as_int[base + 3]) AS gc_cpu_pct,
as_float[base + 4] AS stw_sweep_term_ms,
as_float[base + 5] AS mark_ms,
as_float[base + 6] AS stw_mark_term_ms,
as_float[base + 7] AS cpu_sweep_term_ms,
as_float[base + 8] AS cpu_assist_ms,
as_float[base + 9] AS cpu_background_ms,
as_float[base + 10] AS cpu_idle_ms,
as_float[base + 11] AS cpu_mark_term_ms,
as_int[base + 12] AS heap_start_mb,
as_int[base + 13] AS heap_end_mb,
as_int[base + 14] AS heap_live_mb,
as_int[base + 15] AS heap_goal_mb,
if(stacks, as_int[base + 16], NULL) AS stacks_mb,
if(stacks, as_int[base + 17], NULL) AS globals_mb,
toUInt16(as_int[-1]) AS procs,
reinterpretAsInt64(toDecimal64OrZero(nums[base + 2], 6)) AS since_us
