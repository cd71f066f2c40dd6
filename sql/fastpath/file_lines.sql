-- A plain file the embedded engine reads in place for the gctrace fast path (pipeline/sources/gctrace_fast.py,
-- `FastGctraceStream.feed_file`): its line ends, its occurrences of " ms clock, " (the reader's own two counts, the
-- cheap test of a clean batch, so a file with application lines never costs a refused statement) and its size (the
-- caller checks it against the file's, so the statement that follows reads the very bytes counted here). The file
-- is read as one String (RawBLOB), not split into lines: a quarter less CPU than counting LineAsString's lines
-- (docs/benchmarks.md). The engine counts on its own threads: no Python reads or counts the file, and no copy of it
-- is written for the statement. Compression 'none': the file is read as it is, as Python reads it, whatever its
-- name ends with (file() would otherwise pick a codec from the extension).
SELECT
    countSubstrings(raw, '\n') AS line_ends,
    countSubstrings(raw, ' ms clock, ') AS clock_lines,
    length(raw) AS bytes
FROM file({path:String}, 'RawBLOB', 'raw String', 'none')
SETTINGS max_threads = 1
