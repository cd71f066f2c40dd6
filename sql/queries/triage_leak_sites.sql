-- Triage: the leaking goroutine sites of each instance at its latest leak_sites evaluation since {since}
-- (at most five per instance), worst first: critical, then most goroutines.
WITH latest AS
(
    SELECT service, instance, max(window_start) AS latest_start
    FROM {{db}}.leak_sites
    WHERE window_start >= {since:DateTime64(3, 'UTC')}
      AND ({service:String} = '' OR service = {service:String})
    GROUP BY service, instance
)
SELECT
    service, instance, window_end, function, file, line, created_by, wait_reason, evidence, severity,
    goroutines, leaked_goroutines, growth_per_hour, oldest_wait_minutes, first_floor, last_floor, example_stack
FROM {{db}}.leak_sites AS s FINAL
INNER JOIN latest USING (service, instance)
WHERE s.window_start = latest.latest_start
  AND leaking = 1
  AND ({service:String} = '' OR service = {service:String})
ORDER BY severity = 'critical' DESC, goroutines DESC, function
LIMIT 5 BY service, instance
LIMIT {limit:UInt32}
