-- Claim one (job, window) for this run; claimed_at comes from the server clock so claims order consistently.
INSERT INTO {{db}}.job_leases (job, window_start, holder, expires_at)
VALUES ({job:String}, {window_start:DateTime64(3, 'UTC')}, {holder:String},
        now64(3) + toIntervalMillisecond({lease_ms:UInt64}))
