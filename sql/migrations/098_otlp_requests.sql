-- The OTLP requests whose rows are stored, by dedup token (a hash of the signal and the decoded body;
-- pipeline/request_ledger.py). The writer records the tokens of stored requests (after their rows, every
-- second and at stop), and a starting process reads the most recent ones back, so an export retried after a
-- lost response is stored once also when its first attempt was merged with other requests into one insert
-- and the process restarted in between. A crash loses at most the last second's tokens: those retries are
-- stored again (at-least-once), never a request acknowledged and lost. Retries come within minutes; a day
-- is kept.
CREATE TABLE IF NOT EXISTS {{db}}.otlp_requests {{on_cluster}}
(
    token      String,
    stored_at  DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(stored_at)
ORDER BY (stored_at, token)
TTL toDateTime(stored_at) + INTERVAL 1 DAY;
