-- A table copy's parts once its merges have settled (bench/merge_cost.py). Active parts: how many, the largest, how
-- many are compact, and the bytes on disk per row (compressed column data, the figure a codec changes). Every part
-- the merges made, active or merged away since (inactive parts stay listed for `old_parts_lifetime`, 8 minutes):
-- the rows they rewrote, so a merge's CPU can be given per rewritten row, apart from how far the selector merged.
SELECT
    countIf(active) AS parts,
    maxIf(rows, active) AS largest_rows,
    countIf(active AND part_type = 'Compact') AS compact,
    sumIf(rows, active) AS total_rows,
    sumIf(data_compressed_bytes, active) AS compressed,
    sumIf(data_uncompressed_bytes, active) AS uncompressed,
    sumIf(rows, level > 0) AS merged_rows
FROM system.parts
WHERE database = {database:String} AND table = {table:String}
