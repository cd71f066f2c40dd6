-- The witness of a Kafka batch's insert: `ingest_batch` holds the insert's deduplication token
-- (`kafka/<group>/<topic>/<partition>/<start>-<end>/<table>`) on every row a Kafka write stores, and '' on rows of
-- every other source. It is written in the same block as the rows, so it lands in the same part: a replayed batch
-- whose insert the engine drops as a duplicate can check that its rows are really there (count() by witness)
-- instead of trusting the token alone, which the embedded engine records before it commits the part
-- (docs/kafka.md, "A kill inside one insert"). Every table a Kafka topic writes has it; the OTel tables keep the
-- Collector exporter's layout, because Fleetwatch's own columns come after the exporter's and have defaults
-- (docs/schema.md, "Collector exporter versions"). A constant per insert: LowCardinality stores it once per part.
ALTER TABLE {{db}}.quarantine {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.gc_events {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.scavenger_events {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.pacer_events {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.runtime_notices {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.otel_logs {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.cancel_events {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.runtime_metrics {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.otel_traces {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.otel_metrics_gauge {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.otel_metrics_sum {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.otel_metrics_histogram {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.otel_metrics_exponential_histogram {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.otel_metrics_summary {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.profile_stacks {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.profile_snapshots {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.goroutine_samples {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.heap_samples {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';
ALTER TABLE {{db}}.profile_raw {{on_cluster}} ADD COLUMN IF NOT EXISTS ingest_batch LowCardinality(String) DEFAULT '';

-- A minmax skip index on the witness column (migration 106): a Kafka insert writes one value per part, so every
-- granule holds one value (a batch's token, or '' from other sources) and a replay's count() or DELETE by witness
-- reads only the granules of that batch instead of the whole column. Parts written before the index have none and
-- are read in full until they are merged; nothing is rebuilt.
ALTER TABLE {{db}}.quarantine {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.gc_events {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.scavenger_events {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.pacer_events {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.runtime_notices {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.otel_logs {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.cancel_events {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.runtime_metrics {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.otel_traces {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.otel_metrics_gauge {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.otel_metrics_sum {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.otel_metrics_histogram {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.otel_metrics_exponential_histogram {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.otel_metrics_summary {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.profile_stacks {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.profile_snapshots {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.goroutine_samples {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.heap_samples {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
ALTER TABLE {{db}}.profile_raw {{on_cluster}} ADD INDEX IF NOT EXISTS ingest_batch_minmax ingest_batch TYPE minmax GRANULARITY 1;
