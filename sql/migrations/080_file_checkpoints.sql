-- The file-tailing source (pipeline/sources/tail): where each followed file was read up to, and the
-- plan of every batch, so a restart resumes exactly, even after SIGKILL (docs/architecture.md, "Tailing").
--
-- A file is identified by (node, device, inode, generation) - inode numbers repeat across machines, so the
-- node (the host, or the Kubernetes node name) is part of every key; the generation goes up when the file is truncated
-- in place (copytruncate rotation) or its inode is reused by another file (the fingerprint of its first
-- bytes changed). Before a batch [start_offset, end_offset) of a file is written, its plan is inserted with
-- the token tailplan/<file_key>/<start_offset>: the first plan for a start offset is the only one kept, and
-- a restart that finds it replays exactly that range, with the same carried text (the unfinished line a
-- rotated predecessor ended with) and the same read time (the observed time of lines without a timestamp
-- of their own), so the replayed rows carry the same token (tail/<file_key>/<start_offset>) and
-- ClickHouse drops whatever had already landed.
CREATE TABLE IF NOT EXISTS {{db}}.file_batches {{on_cluster}}
(
    node          LowCardinality(String),
    file_key      String,                                     -- <node>/<device>:<inode>:<generation>
    path          String,
    start_offset  UInt64 CODEC(Delta(8), ZSTD(1)),
    end_offset    UInt64 CODEC(Delta(8), ZSTD(1)),
    carry         String,                                     -- text carried over from the rotated predecessor
    read_at       DateTime64(9, 'UTC'),                       -- observed time of lines without their own
    planned_at    DateTime64(6, 'UTC') DEFAULT now64(6) CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(planned_at)
ORDER BY (node, file_key, start_offset)
TTL toDateTime(planned_at) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Written after a batch's rows, with the token tailcp/<file_key>/<offset>: the file has been read, and its
-- rows stored, up to `offset`. The highest (generation, offset) of a (node, device, inode) is where to resume.
CREATE TABLE IF NOT EXISTS {{db}}.file_checkpoints {{on_cluster}}
(
    node          LowCardinality(String),
    device        UInt64,
    inode         UInt64,
    generation    UInt32,
    offset        UInt64,
    fingerprint   String,                                     -- "<n>:<crc32 of the first n bytes>"
    path          String,
    updated_at    DateTime64(6, 'UTC') DEFAULT now64(6) CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toDate(updated_at)
ORDER BY (node, device, inode, generation, offset)
TTL toDateTime(updated_at) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = 10000;
