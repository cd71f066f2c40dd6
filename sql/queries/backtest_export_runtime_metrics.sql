-- Backtest export: the runtime_metrics rows of the chosen services in [since, until), as a scenario's runtime_metrics.jsonl.
SELECT *
FROM {{db}}.runtime_metrics
WHERE service IN {services:Array(String)}
  AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}
ORDER BY service, instance, ts
