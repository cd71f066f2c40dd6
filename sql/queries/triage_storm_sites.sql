-- Triage: the top three allocation sites of one instance's latest storm window since {since} (storm_sites).
SELECT rank, function, file, line, bytes_per_sec, objects_per_sec, share, instance_bytes_per_sec, window_start
FROM {{db}}.storm_sites FINAL
WHERE service = {service:String} AND instance = {instance:String}
  AND window_start = (
      SELECT max(window_start) FROM {{db}}.storm_sites
      WHERE service = {service:String} AND instance = {instance:String}
        AND window_start >= {since:DateTime64(3, 'UTC')})
ORDER BY rank
LIMIT 3
