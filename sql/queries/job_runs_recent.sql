-- The latest runs of every job, newest first (`fleetwatch jobs list`).
SELECT job, argMax(window_end, finished_at) AS last_window_end, argMax(status, finished_at) AS last_status,
       maxIf(window_end, status = 'ok') AS watermark, countIf(status = 'error') AS errors,
       argMax(error, finished_at) AS last_error, sum(rows_written) AS rows_written, max(finished_at) AS last_run
FROM {{db}}.job_runs
WHERE started_at >= now64(3) - INTERVAL 1 DAY
GROUP BY job
ORDER BY job
