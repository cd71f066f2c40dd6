-- What a bench run wrote and merged, per table (bench/parts.py): parts made by inserts (level 0) and by merges
-- (level > 0), their rows, and the parts still active. Inactive parts stay listed until `old_parts_lifetime`
-- (8 minutes) has passed, so right after a run this is every part the run made, merged away or not.
SELECT
    table,
    countIf(level = 0) AS inserted_parts,
    sumIf(rows, level = 0) AS inserted_rows,
    countIf(level > 0) AS merged_parts,
    sumIf(rows, level > 0) AS merged_rows,
    countIf(active) AS active_parts
FROM system.parts
WHERE database = {database:String}
GROUP BY table
ORDER BY merged_rows DESC, inserted_parts DESC, table
