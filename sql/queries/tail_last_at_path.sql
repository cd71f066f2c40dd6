-- The file last read under a path (its newest batch plan; plans are written before anything else): after
-- a restart, a file rotated away while the tailer was down is found again by its inode next to the path,
-- and read to its end before the new file.
SELECT file_key
FROM {{db}}.file_batches
WHERE node = {node:String} AND path = {path:String}
ORDER BY planned_at DESC
LIMIT 1
