-- Where to resume a followed file: its highest (generation, offset); 0 rows when it was never read.
SELECT generation, offset, fingerprint
FROM {{db}}.file_checkpoints
WHERE node = {node:String} AND device = {device:UInt64} AND inode = {inode:UInt64}
ORDER BY generation DESC, offset DESC
LIMIT 1
