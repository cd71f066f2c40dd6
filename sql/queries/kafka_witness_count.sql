-- How many rows of one Kafka insert a table holds: the rows whose witness (`ingest_batch`, migration 106) is the
-- insert's deduplication token. A replayed batch asks after each of its inserts (pipeline/witness.py):
-- the engine may have dropped the insert as a duplicate of one whose part never landed. The minmax index on the
-- witness (migration 107) limits the read to that batch's granules.
SELECT count() AS stored
FROM {{db}}.{table:Identifier}
WHERE ingest_batch = {witness:String}
