-- Whether a batch's rows carry their witness (`ingest_batch`, migration 106): 1 for every plan recorded by a worker
-- that writes it. Only then does a replay check its inserts by witness (pipeline/sources/kafka/witness.py); a plan
-- recorded before (0) was written without one, so its replay trusts the deduplication tokens as those workers
-- did, instead of taking rows without a witness for missing ones and storing them twice.
ALTER TABLE {{db}}.kafka_batches {{on_cluster}} ADD COLUMN IF NOT EXISTS witnessed UInt8 DEFAULT 0;
