-- The fields of a recognised gc summary line, as a SELECT-list fragment included by the fast paths' statements
-- (an `include` placeholder, pipeline/sqlfiles.py): one definition of which of the line's numbers is
-- which field, each picked as text and converted on its own (converting every number once, as arrays, and picking
-- from those cost more: docs/benchmarks.md "The engine statement, second round"). The including statement defines
-- `nums` (every number of the line, in order: extractAll), `stacks` (the Go 1.18+ form with stacks and globals)
-- and `base` (how many numbers come before the gc line's: the match is anchored at the end of the line, so the
-- last 16 numbers, 18 with stacks and globals, are its own).
-- The trailing `since_us` has no comma: the including statement goes on with its FROM.
toUInt32OrZero(nums[base + 1]) AS gc_num,
toUInt8OrZero(nums[base + 3]) AS gc_cpu_pct,
toFloat64OrZero(nums[base + 4]) AS stw_sweep_term_ms,
toFloat64OrZero(nums[base + 5]) AS mark_ms,
toFloat64OrZero(nums[base + 6]) AS stw_mark_term_ms,
toFloat64OrZero(nums[base + 7]) AS cpu_sweep_term_ms,
toFloat64OrZero(nums[base + 8]) AS cpu_assist_ms,
toFloat64OrZero(nums[base + 9]) AS cpu_background_ms,
toFloat64OrZero(nums[base + 10]) AS cpu_idle_ms,
toFloat64OrZero(nums[base + 11]) AS cpu_mark_term_ms,
toUInt64OrZero(nums[base + 12]) AS heap_start_mb,
toUInt64OrZero(nums[base + 13]) AS heap_end_mb,
toUInt64OrZero(nums[base + 14]) AS heap_live_mb,
toUInt64OrZero(nums[base + 15]) AS heap_goal_mb,
if(stacks, toUInt64OrZero(nums[base + 16]), NULL) AS stacks_mb,
if(stacks, toUInt64OrZero(nums[base + 17]), NULL) AS globals_mb,
toUInt16OrZero(nums[-1]) AS procs,
-- @T in exact microseconds: a Decimal64 with six places keeps the first six digits of the fraction, padded
-- (runtime_lines._frac_us), and its stored integer is the microseconds.
reinterpretAsInt64(toDecimal64OrZero(nums[base + 2], 6)) AS since_us
