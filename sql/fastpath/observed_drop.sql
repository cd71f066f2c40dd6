-- A Kafka worker's stage table, when the worker stops.
DROP TABLE IF EXISTS {{db}}.{stage:Identifier}
