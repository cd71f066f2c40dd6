-- Claim a Kafka partition batch's plan (pipeline/sources/kafka/delivery.py, BatchLedger.claim): one row, inserted
-- with the token plan/<group>/<topic>/<partition>/<start>, so the first plan for a start offset is the only one
-- stored. A statement rather than a client-side insert: the client's insert loads pandas on its first call (about
-- 1.5 CPU s per process), which a worker whose batches all go through the engine's statements never needs. The
-- token is a parameter of the statement's own SETTINGS clause, not a per-call setting: on the embedded engine the
-- client applies per-call settings with five more statements (read the old values, SET, SET back), about 5 ms of
-- CPU per claim.
INSERT INTO {{db}}.kafka_batches
    (group_id, topic, partition, start_offset, end_offset, messages, planned_by, gctrace_engine, witnessed)
SETTINGS insert_deduplication_token = {dedup_token:String}, insert_deduplicate = 1
SELECT {group_id:String}, {topic:String}, {partition:Int32}, {start_offset:Int64}, {end_offset:Int64},
       {messages:UInt32}, {planned_by:String}, {gctrace_engine:UInt8}, {witnessed:UInt8}
