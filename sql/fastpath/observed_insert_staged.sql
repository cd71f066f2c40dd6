-- Every gc row of a Kafka batch, gathered as one block (observed_gather.sql) -> gc_events as one insert read from
-- that one block, so the batch's deduplication token covers all of them as when the Python path inserts them.
-- {witness}: every row's ingest_batch, the insert's token for a Kafka write and '' for any other (migration 106,
-- pipeline/witness.py).
INSERT INTO {{db}}.gc_events
    (
    {{include fastpath/gc_events_columns.sql}}
    , ingest_batch)
SELECT
    {{include fastpath/gc_events_columns.sql}}
    , {witness:String}
FROM {{db}}.{gathered:Identifier}
-- One block, read in one block, on one thread; floats parsed exactly as Python's float() (gctrace_engine.py's store_gc).
-- Settings in the statement, not per call: the embedded client applies per-call settings with extra statements
-- (a system.settings read, a SET per setting and a SET back per setting).
SETTINGS precise_float_parsing = 1, max_threads = 1, max_insert_threads = 1, max_block_size = 1073741824,
         max_insert_block_size = 1073741824, min_insert_block_size_rows = 1073741824,
         min_insert_block_size_bytes = 1099511627776,
         insert_deduplication_token = {dedup_token:String}, insert_deduplicate = {deduplicate:UInt8}
