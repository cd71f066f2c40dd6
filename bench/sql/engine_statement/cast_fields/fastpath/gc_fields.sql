-- A form tried and not kept (bench.engine_statement): every number of the line converted once, as an Array(Float64);
-- integers from it when exact (below 2^53), from their text otherwise.
CAST(nums AS Array(Float64)) AS values,
toUInt32(values[base + 1]) AS gc_num,
splitByChar('.', nums[base + 2]) AS since_parts,
toUInt8(values[base + 3]) AS gc_cpu_pct,
values[base + 4] AS stw_sweep_term_ms,
values[base + 5] AS mark_ms,
values[base + 6] AS stw_mark_term_ms,
values[base + 7] AS cpu_sweep_term_ms,
values[base + 8] AS cpu_assist_ms,
values[base + 9] AS cpu_background_ms,
values[base + 10] AS cpu_idle_ms,
values[base + 11] AS cpu_mark_term_ms,
if(values[base + 12] < 9007199254740992, toUInt64(values[base + 12]), toUInt64OrZero(nums[base + 12])) AS heap_start_mb,
if(values[base + 13] < 9007199254740992, toUInt64(values[base + 13]), toUInt64OrZero(nums[base + 13])) AS heap_end_mb,
if(values[base + 14] < 9007199254740992, toUInt64(values[base + 14]), toUInt64OrZero(nums[base + 14])) AS heap_live_mb,
if(values[base + 15] < 9007199254740992, toUInt64(values[base + 15]), toUInt64OrZero(nums[base + 15])) AS heap_goal_mb,
if(stacks, if(values[base + 16] < 9007199254740992, toUInt64(values[base + 16]), toUInt64OrZero(nums[base + 16])), NULL) AS stacks_mb,
if(stacks, if(values[base + 17] < 9007199254740992, toUInt64(values[base + 17]), toUInt64OrZero(nums[base + 17])), NULL) AS globals_mb,
toUInt16(values[-1]) AS procs,
toInt64OrZero(since_parts[1]) * 1000000
    + toInt64OrZero(substring(concat(since_parts[2], '000000'), 1, 6)) AS since_us
