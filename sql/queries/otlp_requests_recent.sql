-- The most recently stored OTLP request tokens, newest first: what a starting writer remembers
-- (pipeline/request_ledger.py). The table is ordered by time, so this reads the newest parts only.
SELECT token
FROM {{db}}.otlp_requests
WHERE stored_at >= now64(3) - INTERVAL 1 DAY
ORDER BY stored_at DESC
LIMIT {limit:UInt32}
