-- Cancel-propagation gaps: work that kept running (or even started) after the request it served was
-- cancelled. docs/detections.md ("Cancel-propagation gaps") explains the definitions and thresholds.
--
-- Occurrences are attributed to the fixed bucket (`window_seconds`, the scheduler's grid) holding the
-- child span's END: a span is exported when it ends, so that is when its evidence is complete. Each run
-- recomputes every bucket the window touches from the bucket's start, reading ancestors and cancellations
-- `cancel_lookback_seconds` further back; both outputs are ReplacingMergeTree, so a rerun replaces.

-- 1. One row per (child span, the cancellation it is measured against) -> cancel_gap_spans.
INSERT INTO {{db}}.cancel_gap_spans
    (bucket, trace_id, span_id, parent_span_id, parent_service, parent_operation, child_service,
     child_instance, child_operation, child_kind, origin, cause, cancel_span_id, cancel_service,
     cancel_operation, cancel_at, depth, child_start, child_end, grace_ms, overrun_ms, wasted_ms, is_overrun,
     doomed_start, observed, observed_at, propagation_ms, run_id, computed_at)
WITH RECURSIVE
    toStartOfInterval({window_start:DateTime64(3, 'UTC')}, toIntervalSecond({window_seconds:UInt32})) AS from_ts,
    {window_end:DateTime64(3, 'UTC')} AS to_ts,
    from_ts - toIntervalSecond({cancel_lookback_seconds:UInt32}) AS lookback_ts,
-- Spans that may take part: started inside the lookback. status_cause says whether the span itself ended
-- cancelled (gRPC CANCELLED / DEADLINE_EXCEEDED under any of the three semconv attribute names, folded
-- into RpcStatusCode on ingest; Go's error texts in the status message or any attribute; error.type;
-- HTTP 499 / 504).
spans AS
(
    SELECT
        TraceId AS trace_id, SpanId AS span_id, ParentSpanId AS parent_span_id,
        ServiceName AS service, ServiceInstance AS instance, SpanName AS operation, SpanKind AS kind,
        Timestamp AS start_ts, Timestamp + toIntervalNanosecond(Duration) AS end_ts,
        SpanAttributes['error.type'] AS error_type,
        SpanAttributes['http.response.status_code'] AS http_status,
        multiIf(
            RpcStatusCode = 'DEADLINE_EXCEEDED'
                OR error_type IN ('DEADLINE_EXCEEDED', 'context.DeadlineExceeded', '*context.deadlineExceededError')
                OR http_status = '504'
                OR positionCaseInsensitive(StatusMessage, 'context deadline exceeded') > 0
                OR arrayExists(v -> positionCaseInsensitive(v, 'context deadline exceeded') > 0,
                               mapValues(SpanAttributes)),
            'timeout',
            RpcStatusCode = 'CANCELLED'
                OR error_type IN ('CANCELLED', 'context.Canceled')
                OR http_status = '499'
                OR positionCaseInsensitive(StatusMessage, 'context canceled') > 0
                OR arrayExists(v -> positionCaseInsensitive(v, 'context canceled') > 0, mapValues(SpanAttributes)),
            'cancelled',
            '') AS status_cause
    FROM {{db}}.otel_traces
    WHERE Timestamp >= lookback_ts AND Timestamp < to_ts
),
-- Every cancellation: a span that ended cancelled (at its end), and every cancel-event (at cancel_at).
origins AS
(
    SELECT trace_id, span_id, end_ts AS cancel_at, status_cause AS cause, 'span_status' AS origin
    FROM spans
    WHERE status_cause != ''
    UNION ALL
    SELECT trace_id, span_id, cancel_at, toString(cause) AS cause, 'cancel_event' AS origin
    FROM {{db}}.cancel_events
    WHERE cancel_at >= lookback_ts AND cancel_at < to_ts
),
-- Walk down from each cancelled span to all its descendants.
walk AS
(
    SELECT trace_id, span_id AS origin_span, cancel_at, cause, origin, span_id, toUInt8(0) AS depth
    FROM origins
    UNION ALL
    SELECT w.trace_id, w.origin_span, w.cancel_at, w.cause, w.origin, c.span_id, toUInt8(w.depth + 1)
    FROM walk AS w
    INNER JOIN spans AS c ON c.trace_id = w.trace_id AND c.parent_span_id = w.span_id
    WHERE w.depth < 32
),
-- Each span is measured against the EARLIEST cancellation above it (nearest first on ties). A span's own
-- cancel-event counts too (its context was cancelled and it may have kept going); a span's own cancelled
-- status does not (it ended at that moment by definition).
chosen AS
(
    SELECT trace_id, span_id,
           argMin(tuple(origin_span, cancel_at, cause, origin, depth), tuple(cancel_at, depth)) AS pick
    FROM walk
    WHERE depth > 0 OR origin = 'cancel_event'
    GROUP BY trace_id, span_id
),
-- Trace roots, for work that starts after the user-facing request already ended.
roots AS
(
    SELECT trace_id, span_id, service, operation, start_ts, end_ts
    FROM spans
    WHERE parent_span_id = ''
),
-- Children whose evidence is complete in this run's buckets.
children AS
(
    SELECT * FROM spans
    WHERE end_ts >= from_ts AND end_ts < to_ts AND kind NOT IN ('Producer', 'Consumer')
),
measured AS
(
    SELECT c.trace_id AS trace_id, c.span_id AS span_id,
           ch.pick.1 AS cancel_span_id, ch.pick.2 AS cancel_at, ch.pick.3 AS cause, ch.pick.4 AS origin,
           ch.pick.5 AS depth
    FROM children AS c
    INNER JOIN chosen AS ch ON ch.trace_id = c.trace_id AND ch.span_id = c.span_id
    WHERE c.end_ts >= ch.pick.2            -- still running when the cancellation happened
    UNION ALL
    SELECT c.trace_id, c.span_id, r.span_id, r.end_ts, 'root_ended', 'root_ended', toUInt8(0)
    FROM children AS c
    INNER JOIN roots AS r ON r.trace_id = c.trace_id
    LEFT ANTI JOIN chosen AS ch ON ch.trace_id = c.trace_id AND ch.span_id = c.span_id
    WHERE c.start_ts > r.end_ts + toIntervalMillisecond(toInt64({cancel_grace_ms:Float64}))
),
observations AS
(
    SELECT trace_id, span_id, min(cancel_at) AS observed_at
    FROM {{db}}.cancel_events
    WHERE cause = 'parent_cancelled' AND cancel_at >= lookback_ts AND cancel_at < to_ts
    GROUP BY trace_id, span_id
)
SELECT
    toStartOfInterval(c.end_ts, toIntervalSecond({window_seconds:UInt32})) AS bucket,
    m.trace_id, m.span_id, c.parent_span_id,
    p.service AS parent_service, p.operation AS parent_operation,
    c.service AS child_service, c.instance AS child_instance, c.operation AS child_operation, c.kind AS child_kind,
    m.origin, m.cause, m.cancel_span_id, o.service AS cancel_service, o.operation AS cancel_operation,
    m.cancel_at, m.depth, c.start_ts AS child_start, c.end_ts AS child_end,
    -- The parent's (cancelled span's) elapsed time at the cancellation sets the proportional grace.
    greatest({cancel_grace_ms:Float64},
             {cancel_grace_fraction:Float64} * if(o.span_id = '', 0,
                 greatest(0, toUnixTimestamp64Nano(m.cancel_at) - toUnixTimestamp64Nano(o.start_ts)) / 1e6)
    ) AS grace_ms,
    (toUnixTimestamp64Nano(c.end_ts) - toUnixTimestamp64Nano(m.cancel_at)) / 1e6 AS overrun_ms,
    greatest(0, toUnixTimestamp64Nano(c.end_ts)
                - greatest(toUnixTimestamp64Nano(m.cancel_at), toUnixTimestamp64Nano(c.start_ts))) / 1e6 AS wasted_ms,
    overrun_ms > grace_ms AS is_overrun,
    (toUnixTimestamp64Nano(c.start_ts) - toUnixTimestamp64Nano(m.cancel_at)) / 1e6 > grace_ms AS doomed_start,
    ob.span_id != '' AS observed,
    ob.observed_at,
    if(observed, (toUnixTimestamp64Nano(ob.observed_at) - toUnixTimestamp64Nano(m.cancel_at)) / 1e6, nan)
        AS propagation_ms,
    {run_id:String} AS run_id,
    now64(3) AS computed_at
FROM measured AS m
INNER JOIN children AS c ON c.trace_id = m.trace_id AND c.span_id = m.span_id
LEFT JOIN spans AS p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
LEFT JOIN spans AS o ON o.trace_id = m.trace_id AND o.span_id = m.cancel_span_id
LEFT JOIN observations AS ob ON ob.trace_id = m.trace_id AND ob.span_id = m.span_id
SETTINGS join_use_nulls = 0;

-- 2. Per call edge and bucket -> cancel_gaps, from the (deduplicated) occurrences of the same buckets.
INSERT INTO {{db}}.cancel_gaps
    (bucket, bucket_seconds, parent_service, parent_operation, child_service, child_operation, cancellations,
     overruns, doomed_starts, overrun_share, p50_overrun_ms, p99_overrun_ms, max_overrun_ms, wasted_child_ms,
     observed, observed_share, p50_propagation_ms, p99_propagation_ms, instances, affected_instances,
     example_trace_id, flagged, run_id, computed_at)
WITH
    toStartOfInterval({window_start:DateTime64(3, 'UTC')}, toIntervalSecond({window_seconds:UInt32})) AS from_ts,
    {window_end:DateTime64(3, 'UTC')} AS to_ts
SELECT
    bucket, {window_seconds:UInt32} AS bucket_seconds,
    parent_service, parent_operation, child_service, child_operation,
    count() AS cancellations,
    countIf(is_overrun) AS overruns,
    countIf(doomed_start) AS doomed_starts,
    overruns / cancellations AS overrun_share,
    if(overruns > 0, quantileExactIf(0.5)(overrun_ms, is_overrun = 1), 0) AS p50_overrun_ms,
    if(overruns > 0, quantileExactIf(0.99)(overrun_ms, is_overrun = 1), 0) AS p99_overrun_ms,
    if(overruns > 0, maxIf(overrun_ms, is_overrun = 1), 0) AS max_overrun_ms,
    sumIf(wasted_ms, is_overrun = 1) AS wasted_child_ms,
    countIf(observed = 1) AS observed_children,  -- not `observed`: that name is the column being counted
    observed_children / cancellations AS observed_share,
    if(observed_children > 0, quantileExactIf(0.5)(propagation_ms, observed = 1), nan) AS p50_propagation_ms,
    if(observed_children > 0, quantileExactIf(0.99)(propagation_ms, observed = 1), nan) AS p99_propagation_ms,
    uniqExact(child_instance) AS instances,
    arraySlice(
        arrayMap(t -> t.1, arrayReverseSort(t -> t.2,
            CAST(sumMapIf(map(child_instance, wasted_ms), is_overrun = 1), 'Array(Tuple(String, Float64))'))),
        1, 10) AS affected_instances,
    if(overruns > 0, argMaxIf(trace_id, overrun_ms, is_overrun = 1), '') AS example_trace_id,
    overruns >= {cancel_min_overruns:UInt32} AND overrun_share >= {cancel_min_overrun_share:Float64} AS flagged,
    {run_id:String} AS run_id,
    now64(3) AS computed_at
FROM {{db}}.cancel_gap_spans FINAL
WHERE bucket >= from_ts AND bucket < to_ts
GROUP BY bucket, parent_service, parent_operation, child_service, child_operation
