-- Fleet roll-up of cancel-propagation gaps over the last 15 minutes, one row per service whose work kept
-- running after a cancellation (the CHILD side of an edge: that is where the fix goes), worst first.
-- For another period, run the same query over cancel_gaps / cancel_gap_spans with your own bounds.
CREATE OR REPLACE VIEW {{db}}.cancel_gaps_by_service AS
WITH
    now64(3) - INTERVAL 15 MINUTE AS since,
edges AS
(
    SELECT child_service, parent_service, parent_operation, child_operation,
           sum(cancellations) AS cancellations, sum(overruns) AS overruns, sum(doomed_starts) AS doomed_starts,
           sum(wasted_child_ms) AS wasted_ms, max(p99_overrun_ms) AS p99_overrun_ms, sum(observed) AS observed,
           max(flagged) AS flagged
    FROM {{db}}.cancel_gaps FINAL
    WHERE bucket >= since
    GROUP BY child_service, parent_service, parent_operation, child_operation
),
per_instance AS
(
    SELECT child_service, child_instance, uniqExact(trace_id, span_id) AS evaluated,
           countIf(is_overrun = 1) AS overruns, sumIf(wasted_ms, is_overrun = 1) AS wasted_ms
    FROM {{db}}.cancel_gap_spans FINAL
    WHERE bucket >= since
    GROUP BY child_service, child_instance
),
instances AS
(
    SELECT child_service, count() AS instances, countIf(overruns > 0) AS affected_instances,
           arraySlice(arrayMap(t -> t.1, arrayReverseSort(t -> t.2,
               groupArrayIf(tuple(child_instance, wasted_ms), overruns > 0))), 1, 5) AS worst_instances
    FROM per_instance
    GROUP BY child_service
)
SELECT
    e.child_service AS service,
    countIf(e.flagged = 1) AS flagged_edges,
    count() AS edges,
    sum(e.cancellations) AS cancellations,
    sum(e.overruns) AS overruns,
    sum(e.doomed_starts) AS doomed_starts,
    if(cancellations > 0, overruns / cancellations, 0) AS overrun_share,
    sum(e.wasted_ms) / 1000 AS wasted_child_seconds,
    max(e.p99_overrun_ms) AS worst_p99_overrun_ms,
    if(cancellations > 0, sum(e.observed) / cancellations, 0) AS observed_share,
    any(i.instances) AS instances,
    any(i.affected_instances) AS affected_instances,
    if(instances > 0, affected_instances / instances, 0) AS affected_share,
    any(i.worst_instances) AS worst_instances,
    argMax(concat(e.parent_service, ' ', e.parent_operation, ' -> ', e.child_service, ' ', e.child_operation),
           e.wasted_ms) AS worst_edge
FROM edges AS e
LEFT JOIN instances AS i ON i.child_service = e.child_service
GROUP BY e.child_service
HAVING overruns > 0
ORDER BY flagged_edges DESC, wasted_child_seconds DESC
