-- The gc rows of a Kafka batch staged through the engine: those the Python normalizer made (Go 1.5 lines, lines
-- rebuilt from pieces) and the engine's (observed_insert.sql); also the table they are gathered into as one block
-- (observed_gather.sql) before one insert into gc_events under the batch's gc_events token. One table per Kafka
-- worker, emptied before every batch, dropped when the worker stops.
CREATE TABLE IF NOT EXISTS {{db}}.{stage:Identifier} AS {{db}}.gc_events ENGINE = Memory
