-- Backtest export: the gc_events rows of the chosen services in [since, until), as a scenario's gc_events.jsonl.
SELECT *
FROM {{db}}.gc_events
WHERE service IN {services:Array(String)}
  AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}
ORDER BY service, instance, ts
