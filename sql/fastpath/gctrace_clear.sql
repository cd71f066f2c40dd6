-- A stream's stage table, after every batch.
TRUNCATE TABLE IF EXISTS {{db}}.{stage:Identifier}
