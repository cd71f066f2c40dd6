-- Backtest export: the cancel_events rows of the chosen services in [since, until), as a scenario's cancel_events.jsonl.
SELECT *
FROM {{db}}.cancel_events
WHERE service IN {services:Array(String)}
  AND cancel_at >= {since:DateTime64(3, 'UTC')} AND cancel_at < {until:DateTime64(3, 'UTC')}
ORDER BY service, instance, cancel_at
