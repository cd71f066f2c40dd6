-- Fleet roll-up of leak trends: per service and signal, each instance's latest verdict of the last hour;
-- the share of instances leaking and the five worst (fastest Sen slope first, with time to the limit).
CREATE OR REPLACE VIEW {{db}}.leak_trends_by_service {{on_cluster}} AS
WITH latest AS
(
    SELECT service, instance, signal,
           argMax((leaking, severity, sen_slope_per_hour, relative_growth, hours_to_limit, last_floor, reason),
                  window_start) AS v,
           max(window_end) AS as_of
    FROM {{db}}.leak_trends FINAL
    WHERE window_start >= now64(3) - INTERVAL 1 HOUR
    GROUP BY service, instance, signal
)
SELECT
    service, signal,
    count() AS instances,
    countIf(v.1 = 1) AS instances_leaking,
    round(instances_leaking / instances, 3) AS share_affected,
    countIf(v.1 = 1 AND v.2 = 'critical') AS critical,
    arraySlice(arrayReverseSort(x -> x.3, groupArrayIf((instance, v.2, round(v.3, 2), round(v.4, 3), v.5, v.6), v.1 = 1)),
               1, 5) AS worst_instances,   -- (instance, severity, slope/h, growth, hours_to_limit, last floor)
    max(as_of) AS as_of
FROM latest
GROUP BY service, signal
ORDER BY share_affected DESC, critical DESC
