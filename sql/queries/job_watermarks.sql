-- Per job, the end of the latest window that completed successfully: where the next run starts.
SELECT job, max(window_end) AS watermark
FROM {{db}}.job_runs
WHERE status = 'ok'
GROUP BY job
