-- The working columns of gc_recognise.sql and gc_fields.sql that no later level reads, as an EXCEPT list fragment
-- for gctrace_chunk.sql: its restart window copies every column it is given, so these stay out of it. A form of the
-- fields with other working columns (bench/sql/engine_statement/<variant>/) names them here, not in a copy of the
-- chunk statement.
line, shape, trimmed, nums, base
