-- A Kafka worker's stage table, before every batch.
TRUNCATE TABLE IF EXISTS {{db}}.{stage:Identifier}
