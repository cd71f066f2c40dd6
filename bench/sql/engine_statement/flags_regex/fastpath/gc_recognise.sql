-- A form tried and not kept (bench.engine_statement; docs/benchmarks.md "The engine statement, second round"):
-- round 1's recognition (the stacks and forced forms by two end-anchored regexes) with this round's
-- fields, to isolate what reading the forms off the line's end saves; `trimmed` is only a placeholder here.
-- The recognition of a gc summary line, as a SELECT-list fragment included by the fast paths' statements (an
-- `include` placeholder, pipeline/sqlfiles.py): one definition of which lines are plain gc lines. The including
-- statement names the line `line`; this defines `shape` (the full-line match), `prefix_raw` (what stands before
-- the gc line), `recognised`, the form flags `leak_check`, `stacks` and `forced`, and `nums` (every number of the
-- line, in order), which gc_fields.sql reads. The flags and `nums` mean something only on a recognised line, and are
-- computed on every line without testing `recognised` first: every including statement refuses its whole batch when
-- a line is not recognised (throwIf before a row is written), and the test cost ~0.3 CPU s per M lines (the engine
-- copies the lines that pass a short-circuited AND or if; docs/benchmarks.md "The engine statement").
        match(line, 'gc (?:\\d{1,9}) @(?:\\d{1,10})\\.(?:\\d+)s (?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])%(?: \\(checking for goroutine leaks\\))?: (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms clock, (?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)/(?:\\d{1,12}(?:\\.\\d+)?)\\+(?:\\d{1,12}(?:\\.\\d+)?) ms cpu, (?:\\d{1,18})->(?:\\d{1,18})->(?:\\d{1,18}) MB, (?:\\d{1,18}) MB goal(?:, (?:\\d{1,18}) MB stacks, (?:\\d{1,18}) MB globals)?, (?:\\d{1,4}) P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$') AS shape,
        if(shape AND NOT startsWith(line, 'gc '),
           extract(line, '^(.*?)(?:gc #?\\d+ @|(?:forced )?scvg|scav \\d|pacer: )'), '') AS prefix_raw,
        shape AND isValidUTF8(line) AND match(prefix_raw, '^[ -~]*$') AS recognised,
        position(line, '% (checking for goroutine leaks): ') > 0 AS leak_check,
        match(line, ' MB stacks, \\d+ MB globals, \\d+ P(?: \\(forced\\))?[ \\t\\r\\f\\v]*$') AS stacks,
        match(line, ' P \\(forced\\)[ \\t\\r\\f\\v]*$') AS forced,
        '' AS trimmed,
        extractAll(line, '\\d+(?:\\.\\d+)?') AS nums,
