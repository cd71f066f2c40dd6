-- Every gc row of a Kafka batch, gathered as one block (observed_gather.sql) -> gc_events as one insert read from
-- that one block, so the batch's deduplication token covers all of them as when the Python path inserts them.
-- {witness}: every row's ingest_batch, the insert's token for a Kafka write and '' for any other (migration 106,
-- pipeline/sources/kafka/witness.py).
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    , ingest_batch)
SELECT
    {{include fastpath/gc_events_columns.sql}}
    , {witness:String}
FROM {{db}}.{gathered:Identifier}
