SELECT ts, profile_type, sum(goroutines) AS goroutines, max(wait_minutes) AS max_wait_minutes,
       max(leaked) AS leaked, groupUniqArray(wait_reason) AS wait_reasons, any(stack_id) AS example_stack_id
FROM {{db}}.goroutine_samples
WHERE service = {service:String} AND instance = {instance:String}
  AND site_function = {function:String} AND site_file = {file:String} AND site_line = {line:UInt32}
  AND ts >= {since:DateTime64(3, 'UTC')}
GROUP BY ts, profile_type
ORDER BY ts
