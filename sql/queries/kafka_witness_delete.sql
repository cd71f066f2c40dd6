-- Remove what part of one Kafka insert a table holds (an insert cut into several parts, some of which landed), so
-- that the replay can store the whole insert again under a new token (pipeline/witness.py). A
-- lightweight DELETE: the rows are masked at once and dropped at the next merge.
DELETE FROM {{db}}.{table:Identifier}
WHERE ingest_batch = {witness:String}
