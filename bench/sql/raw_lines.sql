-- The "limit" reference: the same raw lines inserted as one String column, nothing parsed.
CREATE TABLE IF NOT EXISTS {{db}}.bench_raw_lines
(
    line String CODEC(ZSTD(1))
)
ENGINE = MergeTree
ORDER BY tuple();
