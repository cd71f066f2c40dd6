-- The staged lines the fast path does not take (see gctrace_stage.sql): they go to the Python normalizer.
SELECT seq
FROM {{db}}.{stage:Identifier}
WHERE NOT recognised
ORDER BY seq
