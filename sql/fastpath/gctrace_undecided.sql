-- Staged lines that hold a gc line's " ms clock, " but that the stage does not recognise (a Go 1.5 line, a
-- torn or split line, bytes that are not UTF-8): while there are none, the engine's clock over the recognised
-- lines is the one normalize.gctrace.stream_span_ns computes, and a file's span needs no Python pass.
SELECT count() AS lines
FROM {{db}}.{stage:Identifier}
WHERE NOT recognised AND position(line, ' ms clock, ') > 0
