-- Triage: instances whose goroutine or live-heap floor is trending up since {since}, worst first
-- (critical = projected to hit its limit soon, then still leaking at the latest evaluation, then fastest).
WITH latest AS
(
    SELECT service, instance, signal, max(window_end) AS latest_end
    FROM {{db}}.leak_trends
    WHERE window_start >= {since:DateTime64(3, 'UTC')}
      AND ({service:String} = '' OR service = {service:String})
    GROUP BY service, instance, signal
)
SELECT
    service, instance, signal,
    argMax(unit, window_start) AS unit,
    argMax(severity, window_start) AS severity,
    argMax(reason, window_start) AS reason,
    count() AS leaking_windows,
    min(window_start) AS first_seen,
    max(window_end) AS last_seen,
    max(window_end) >= any(latest.latest_end) AS ongoing,
    argMax(n_buckets, window_start) AS n_buckets,
    argMax(first_floor, window_start) AS first_floor,
    argMax(last_floor, window_start) AS last_floor,
    argMax(sen_slope_per_hour, window_start) AS sen_slope_per_hour,
    argMax(relative_growth, window_start) AS relative_growth,
    argMax(mk_z, window_start) AS mk_z,
    argMax(spearman_rho, window_start) AS spearman_rho,
    argMax(limit_value, window_start) AS limit_value,
    argMax(hours_to_limit, window_start) AS hours_to_limit,
    argMax(segment_start, window_start) AS segment_start
FROM {{db}}.leak_trends AS t FINAL
INNER JOIN latest USING (service, instance, signal)
WHERE leaking = 1
  AND window_start >= {since:DateTime64(3, 'UTC')}
  AND ({service:String} = '' OR service = {service:String})
GROUP BY service, instance, signal
ORDER BY severity = 'critical' DESC, ongoing DESC, relative_growth DESC
LIMIT {limit:UInt32}
