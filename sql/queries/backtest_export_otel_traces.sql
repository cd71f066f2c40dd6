-- Backtest export: the spans of the chosen services in [since, until), as a scenario's otel_traces.jsonl.
SELECT *
FROM {{db}}.otel_traces
WHERE ServiceName IN {services:Array(String)}
  AND Timestamp >= {since:DateTime64(3, 'UTC')} AND Timestamp < {until:DateTime64(3, 'UTC')}
ORDER BY ServiceName, Timestamp
