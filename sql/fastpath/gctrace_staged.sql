-- How many lines a raw (LineAsString) staging insert left in a stage table, and its last seq: the fast path
-- trusts the raw bytes only when the lines arrived as one block numbered 0..n-1 (gctrace_fast.py).
SELECT count() AS lines, max(seq) AS last_seq
FROM {{db}}.{stage:Identifier}
