-- A table copy's active parts once its merges have settled (bench/merge_cost.py): how many, the largest, how many
-- are compact, and the bytes on disk per row (compressed column data, the figure a codec changes).
SELECT
    count() AS parts,
    max(rows) AS largest_rows,
    countIf(part_type = 'Compact') AS compact,
    sum(rows) AS total_rows,
    sum(data_compressed_bytes) AS compressed,
    sum(data_uncompressed_bytes) AS uncompressed
FROM system.parts
WHERE database = {database:String} AND table = {table:String} AND active
