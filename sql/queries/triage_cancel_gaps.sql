-- Triage: call edges whose child kept working after a cancellation since {since}, worst first (most wasted
-- child time). {service} matches either end of the edge.
SELECT
    parent_service, parent_operation, child_service, child_operation,
    sum(cancellations) AS cancellations,
    sum(overruns) AS overruns,
    sum(doomed_starts) AS doomed_starts,
    overruns / greatest(cancellations, 1) AS overrun_share,
    max(p50_overrun_ms) AS p50_overrun_ms,
    max(p99_overrun_ms) AS p99_overrun_ms,
    max(max_overrun_ms) AS max_overrun_ms,
    sum(wasted_child_ms) AS wasted_child_ms,
    sum(observed) AS observed,
    observed / greatest(cancellations, 1) AS observed_share,
    arrayDistinct(arrayFlatten(groupArray(affected_instances))) AS affected_instances,
    argMax(example_trace_id, bucket) AS example_trace_id,      -- from the latest bucket
    min(bucket) AS first_seen,
    max(bucket) AS last_seen
FROM {{db}}.cancel_gaps FINAL
WHERE bucket >= toDateTime({since:DateTime64(3, 'UTC')})
  AND ({service:String} = '' OR child_service = {service:String} OR parent_service = {service:String})
GROUP BY parent_service, parent_operation, child_service, child_operation
HAVING max(flagged) = 1
ORDER BY wasted_child_ms DESC
LIMIT {limit:UInt32}
