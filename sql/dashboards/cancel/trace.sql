-- One trace in the shape the plugin's trace view reads (opened from the trace links; ${trace_id} is the
-- clicked value).
SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
       SpanName AS operationName, Timestamp AS startTime, multiply(Duration, 0.000001) AS duration,
       arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
       arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
       StatusCode AS statusCode
FROM otel_traces
WHERE TraceId = '${trace_id}'
ORDER BY startTime ASC
LIMIT 1000
