-- A stream's stage table, when the stream ends.
DROP TABLE IF EXISTS {{db}}.{stage:Identifier}
