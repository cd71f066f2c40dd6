-- Leaking goroutine sites: each site's latest evaluation in the range where it was flagged, most goroutines
-- first (function and file:line of the blocking frame, the creating call, the evidence).
SELECT service, instance, v.1 AS function, v.2 AS file_line, v.3 AS created_by, v.4 AS wait_reason,
       v.5 AS goroutines, round(v.6, 1) AS growth_per_hour, v.7 AS oldest_wait_minutes,
       arrayStringConcat(v.8, ' ') AS evidence, v.9 AS severity, as_of
FROM
(
    SELECT service, instance, site_id,
           argMax((function, concat(file, ':', toString(line)), created_by, wait_reason, goroutines,
                   growth_per_hour, oldest_wait_minutes, evidence, severity, leaking), window_end) AS v,
           max(window_end) AS as_of
    FROM leak_sites FINAL
    WHERE $__timeFilter(window_end)
      AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
    GROUP BY service, instance, site_id
)
WHERE v.10 = 1
ORDER BY goroutines DESC
LIMIT 200
