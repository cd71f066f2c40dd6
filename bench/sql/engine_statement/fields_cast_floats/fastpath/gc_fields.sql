-- A form tried and not kept (bench.engine_statement; docs/benchmarks.md "The engine statement, second round"):
-- the eight float fields and the small integers from one CAST(nums AS Array(Float64)), the heap figures
-- converted from their text.
CAST(nums AS Array(Float64)) AS as_float,
toUInt32(as_float[base + 1]) AS gc_num,
toUInt8(as_float[base + 3]) AS gc_cpu_pct,
as_float[base + 4] AS stw_sweep_term_ms,
as_float[base + 5] AS mark_ms,
as_float[base + 6] AS stw_mark_term_ms,
as_float[base + 7] AS cpu_sweep_term_ms,
as_float[base + 8] AS cpu_assist_ms,
as_float[base + 9] AS cpu_background_ms,
as_float[base + 10] AS cpu_idle_ms,
as_float[base + 11] AS cpu_mark_term_ms,
toUInt64OrZero(nums[base + 12]) AS heap_start_mb,
toUInt64OrZero(nums[base + 13]) AS heap_end_mb,
toUInt64OrZero(nums[base + 14]) AS heap_live_mb,
toUInt64OrZero(nums[base + 15]) AS heap_goal_mb,
if(stacks, toUInt64OrZero(nums[base + 16]), NULL) AS stacks_mb,
if(stacks, toUInt64OrZero(nums[base + 17]), NULL) AS globals_mb,
toUInt16(as_float[-1]) AS procs,
reinterpretAsInt64(toDecimal64OrZero(nums[base + 2], 6)) AS since_us
