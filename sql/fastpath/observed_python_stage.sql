-- The gc rows the Python normalizer made for a Kafka batch staged through the engine (Go 1.5 lines, lines
-- rebuilt from pieces): observed_insert.sql inserts them together with the engine's rows, so every gc row of the
-- batch is in one insert under the batch's gc_events token, as when Python makes every row. One table per Kafka
-- worker, emptied before every batch, dropped when the worker stops.
CREATE TABLE IF NOT EXISTS {{db}}.{stage:Identifier} AS {{db}}.gc_events ENGINE = Memory
