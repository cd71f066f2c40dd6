-- Fleet roll-up of GC storms: per service, each instance's latest verdict of the last hour; the share of
-- instances in a storm, how many critical, the kinds seen, and the five worst (highest GC CPU first).
CREATE OR REPLACE VIEW {{db}}.gc_storms_by_service {{on_cluster}} AS
WITH latest AS
(
    SELECT service, instance,
           argMax((storm, severity, kind, gc_cpu_fraction, gc_per_s, stw_p99_ms, reason), window_start) AS v,
           max(window_end) AS as_of
    FROM {{db}}.gc_storms FINAL
    WHERE window_start >= now64(3) - INTERVAL 1 HOUR
    GROUP BY service, instance
)
SELECT
    service,
    count() AS instances,
    countIf(v.1 = 1) AS instances_in_storm,
    round(instances_in_storm / instances, 3) AS share_affected,
    countIf(v.1 = 1 AND v.2 = 'critical') AS critical,
    groupUniqArrayIf(v.3, v.1 = 1) AS kinds,
    arraySlice(arrayReverseSort(x -> x.4, groupArrayIf((instance, v.3, v.2, round(v.4, 3), round(v.5, 1), v.7), v.1 = 1)),
               1, 5) AS worst_instances,   -- (instance, kind, severity, gc_cpu_fraction, gc_per_s, reason)
    max(as_of) AS as_of
FROM latest
GROUP BY service
ORDER BY share_affected DESC, critical DESC
