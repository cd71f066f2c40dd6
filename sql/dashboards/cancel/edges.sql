-- Call edges whose children kept running after a cancellation, worst first; example_trace_id opens the trace.
SELECT parent_service, parent_operation, child_service, child_operation,
       sum(cancellations) AS total_cancellations, sum(overruns) AS total_overruns,
       round(total_overruns / nullIf(total_cancellations, 0), 3) AS overrun_share,
       round(max(p99_overrun_ms), 1) AS worst_p99_overrun_ms, round(sum(wasted_child_ms) / 1000, 2) AS wasted_child_s,
       round(sum(observed) / nullIf(total_cancellations, 0), 3) AS observed_share,
       argMax(example_trace_id, max_overrun_ms) AS trace_id
FROM cancel_gaps FINAL
WHERE $__timeFilter(bucket) AND child_service IN (${service:singlequote})
GROUP BY parent_service, parent_operation, child_service, child_operation
HAVING total_overruns > 0
ORDER BY wasted_child_s DESC
LIMIT 200
