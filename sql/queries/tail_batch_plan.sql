-- The plan of the batch that starts at a file's checkpoint (0 rows: none, the tailer may choose the
-- range). The earliest plan wins if deduplication ever let two through.
SELECT end_offset, carry, toUnixTimestamp64Nano(read_at) AS read_at_ns
FROM {{db}}.file_batches
WHERE node = {node:String} AND file_key = {file_key:String} AND start_offset = {start_offset:UInt64}
ORDER BY planned_at
LIMIT 1
