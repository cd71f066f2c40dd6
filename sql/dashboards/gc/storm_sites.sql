-- The allocation sites behind the GC storms in the range: per instance and site, its average rate and share
-- over the storm windows where it ranked in the top sites, highest rate first.
SELECT service, instance, function, concat(file, ':', toString(line)) AS file_line,
       round(avg(bytes_per_sec) / 1048576, 2) AS mib_per_sec, round(avg(objects_per_sec)) AS objects_per_sec,
       round(100 * avg(share), 1) AS share_pct, min(rank) AS best_rank, count() AS storm_windows,
       max(window_end) AS last_seen
FROM storm_sites FINAL
WHERE $__timeFilter(window_end)
  AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
GROUP BY service, instance, function, file, line
ORDER BY mib_per_sec DESC
LIMIT 200
