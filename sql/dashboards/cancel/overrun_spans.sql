-- The longest overruns with their traces (trace_id links to the trace view).
SELECT child_end AS time, trace_id, child_service, child_instance, child_operation, cause,
       parent_service, parent_operation, round(overrun_ms, 1) AS overrun_ms, observed
FROM cancel_gap_spans FINAL
WHERE $__timeFilter(bucket) AND is_overrun = 1
  AND child_service IN (${service:singlequote}) AND child_instance IN (${instance:singlequote})
ORDER BY overrun_ms DESC
LIMIT 200
