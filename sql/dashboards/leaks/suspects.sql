-- Each series' latest verdict where it is leaking: the suspects, fastest growth first.
SELECT service, instance, signal, unit, v.1 AS severity, round(v.2, 2) AS slope_per_hour,
       round(v.3 * 100, 1) AS growth_pct, round(v.4, 1) AS hours_to_limit, v.5 AS reason, as_of
FROM
(
    SELECT service, instance, signal, any(unit) AS unit,
           argMax((severity, sen_slope_per_hour, relative_growth, hours_to_limit, reason, leaking), window_end) AS v,
           max(window_end) AS as_of
    FROM leak_trends FINAL
    WHERE $__timeFilter(window_end)
      AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
    GROUP BY service, instance, signal
)
WHERE v.6 = 1
ORDER BY slope_per_hour DESC
LIMIT 200
