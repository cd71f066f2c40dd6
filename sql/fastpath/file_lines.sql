-- A plain file the embedded engine reads in place for the gctrace fast path (pipeline/sources/gctrace_fast.py,
-- `FastGctraceStream.feed_file`): its lines, how many hold " ms clock, " (the same cheap test of a clean batch
-- the reader's counts make, so a file with application lines never costs a refused statement) and the bytes the
-- lines came from, each counted with its line end (the caller checks them against the file's size, so the
-- statement that follows reads the very bytes counted here). The engine counts on its own threads: no Python reads
-- or counts the file, and no copy of it is written for the statement. Compression 'none': the file is read as it
-- is, as Python reads it, whatever its name ends with (file() would otherwise pick a codec from the extension).
SELECT
    count() AS lines,
    countIf(position(line, ' ms clock, ') > 0) AS clock_lines,
    sum(length(line) + 1) AS bytes
FROM file({path:String}, 'LineAsString', 'line String', 'none')
SETTINGS max_threads = 1
