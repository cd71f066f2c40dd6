-- Which way a gctrace batch's gc rows are written is part of its plan: 1 when the engine stores them
-- (pipeline/sources/kafka/gctrace_engine.py), 0 when the Python normalizer does. A replay follows the plan, so a
-- batch is always written the same way, with the same insert blocks under the same deduplication tokens, even
-- when the worker that replays it runs another version or another `kafka.gctrace_engine` setting. Plans recorded
-- before this column existed read 0: the way those workers wrote.
ALTER TABLE {{db}}.kafka_batches {{on_cluster}} ADD COLUMN IF NOT EXISTS gctrace_engine UInt8 DEFAULT 0;
