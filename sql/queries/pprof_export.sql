-- `fleetwatch pprof export`: the raw bytes of one instance's latest snapshot of a profile type at or before
-- {at}. base64 keeps the bytes intact through every reader (embedded engine, HTTP endpoint, JSON formats).
SELECT ts, snapshot_id, format, base64Encode(data) AS data_base64
FROM {{db}}.profile_raw
WHERE service = {service:String}
  AND instance = {instance:String}
  AND profile_type = {profile_type:String}
  AND ts <= {at:DateTime64(3, 'UTC')}
ORDER BY ts DESC, snapshot_id
LIMIT 1
