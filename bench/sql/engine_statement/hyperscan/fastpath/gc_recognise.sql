-- A form tried and not kept (bench.engine_statement; docs/benchmarks.md "The engine statement, second round"):
-- the full-line match by Hyperscan (multiMatchAny, allow_hyperscan) instead of RE2's match.
-- The recognition of a gc summary line, as a SELECT-list fragment included by the fast paths' statements (an
-- `include` placeholder, pipeline/sqlfiles.py): one definition of which lines are plain gc lines. The including
-- statement names the line `line`; this defines `shape` (the full-line match), `prefix_raw` (what stands before
-- the gc line), `recognised`, the form flags `leak_check`, `stacks` and `forced` (with `trimmed`, the line without
-- its trailing blanks), and `nums` (every number of the line, in order, each a valid decimal), which gc_fields.sql
-- reads. The flags and `nums` mean something only on a recognised line, and are
-- computed on every line without testing `recognised` first: every including statement refuses its whole batch when
-- a line is not recognised (throwIf before a row is written), and the test cost ~0.3 CPU s per M lines (the engine
-- copies the lines that pass a short-circuited AND or if; docs/benchmarks.md "The engine statement").
        multiMatchAny(line, ['gc (?:\\d{1,9}) @(?:\\d{1,10})\\.(?:\\d+)s (?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])%(?: \\(checking for goroutine leaks\\))?: (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms clock, (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms cpu, (?:\\d{1,18})->(?:\\d{1,18})->(?:\\d{1,18}) MB, (?:\\d{1,18}) MB goal(?:, (?:\\d{1,18}) MB stacks, (?:\\d{1,18}) MB globals)?, (?:\\d{1,4}) P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$']) AS shape,
        if(shape AND NOT startsWith(line, 'gc '),
           extract(line, '^(.*?)(?:gc #?\\d+ @|(?:forced )?scvg|scav \\d|pacer: )'), '') AS prefix_raw,
        shape AND isValidUTF8(line) AND match(prefix_raw, '^[ -~]*$') AS recognised,
        position(line, '% (checking for goroutine leaks): ') > 0 AS leak_check,
        -- The forms read off the line's end without a regex (two end-anchored RE2 matches cost ~0.25 CPU s per M
        -- lines more; docs/benchmarks.md "The engine statement, second round"): on a line `shape` matched, the line
        -- without its trailing blanks (`trimmed`) ends `N P` or `N P (forced)`, and ' MB globals, ' stands in its last
        -- 40 characters exactly when the stacks part is there (what follows it is at most 15 characters; a gc line
        -- without that part has no 'globals' in it and is longer than 40 characters).
        trim(TRAILING ' \t\r\f\v' FROM line) AS trimmed,
        position(trimmed, ' MB globals, ', toUInt64(greatest(1, length(trimmed) - 40))) > 0 AS stacks,
        endsWith(trimmed, ')') AS forced,
        extractAll(line, '\\d+(?:\\.\\d+)?') AS nums,
