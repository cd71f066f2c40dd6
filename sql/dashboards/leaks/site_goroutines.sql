-- Goroutines per site over time, for the sites flagged as leaking anywhere in the range (one series each).
SELECT $__timeInterval(window_end) AS time, concat(instance, ' ', function, ' ', file, ':', toString(line)) AS site,
       max(goroutines) AS goroutines
FROM leak_sites FINAL
WHERE $__timeFilter(window_end)
  AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
  AND (service, instance, site_id) IN (
      SELECT service, instance, site_id FROM leak_sites
      WHERE $__timeFilter(window_end) AND leaking = 1
        AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote}))
GROUP BY time, site
ORDER BY time
