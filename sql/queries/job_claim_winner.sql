-- The live claim that came first wins the window; expired claims (a worker that died) are ignored.
SELECT argMin(holder, (claimed_at, holder))
FROM {{db}}.job_leases
WHERE job = {job:String} AND window_start = {window_start:DateTime64(3, 'UTC')} AND expires_at > now64(3)
