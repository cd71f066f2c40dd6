SELECT ts, profile_type, sum(alloc_space) AS alloc_space, sum(alloc_objects) AS alloc_objects,
       sum(inuse_space) AS inuse_space, sum(inuse_objects) AS inuse_objects
FROM {{db}}.heap_samples
WHERE service = {service:String} AND instance = {instance:String}
  AND site_function = {function:String} AND site_file = {file:String} AND site_line = {line:UInt32}
  AND ts >= {since:DateTime64(3, 'UTC')}
GROUP BY ts, profile_type
ORDER BY ts
