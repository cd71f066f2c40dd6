-- The planned end of the batch that starts at a partition's committed offset (plans = 0: no plan, the
-- worker may choose the range), whether its gc rows are written by the engine, and whether its rows carry their
-- witness (migration 107), and when it was planned: every write of the batch stamps its rows' received_at with
-- that time, so a replay on a later day lands in the same partitions as the first write and its tokens match there.
-- The earliest plan wins if deduplication ever let two through.
SELECT argMin(end_offset, planned_at) AS end_offset, count() AS plans,
       argMin(gctrace_engine, planned_at) AS gctrace_engine, argMin(witnessed, planned_at) AS witnessed,
       min(planned_at) AS first_planned_at
FROM {{db}}.kafka_batches
WHERE group_id = {group_id:String} AND topic = {topic:String} AND partition = {partition:Int32}
  AND start_offset = {start_offset:Int64}
