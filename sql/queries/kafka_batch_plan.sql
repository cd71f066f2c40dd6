-- The planned end of the batch that starts at a partition's committed offset (0 rows: no plan, the
-- worker may choose the range), and whether its gc rows are written by the engine. The earliest plan wins if
-- deduplication ever let two through.
SELECT argMin(end_offset, planned_at), count(), argMin(gctrace_engine, planned_at)
FROM {{db}}.kafka_batches
WHERE group_id = {group_id:String} AND topic = {topic:String} AND partition = {partition:Int32}
  AND start_offset = {start_offset:Int64}
