-- The staged Kafka lines the engine does not take (see observed_stage.sql): they go to the Python normalizer.
SELECT seq
FROM {{db}}.{stage:Identifier}
WHERE NOT recognised
ORDER BY seq
