-- One trace in the shape the plugin's trace view reads (opened from the trace links; ${trace_id} is the
-- clicked value). Bounded in time by the trace-id lookup table (otel_traces_trace_id_ts, kept by a
-- materialized view), as the plugin's own trace-by-id query is: only the trace's own partitions are read.
WITH '${trace_id}' AS fw_trace_id,
     (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = fw_trace_id) AS fw_trace_start,
     (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = fw_trace_id) AS fw_trace_end
SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
       SpanName AS operationName, Timestamp AS startTime, multiply(Duration, 0.000001) AS duration,
       arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
       arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
       StatusCode AS statusCode
FROM otel_traces
WHERE TraceId = fw_trace_id AND Timestamp >= fw_trace_start AND Timestamp <= fw_trace_end
ORDER BY startTime ASC
LIMIT 1000
