-- Share of the instance's CPU (wall time x GOMAXPROCS) spent in GC, per detection window.
SELECT $__timeInterval(window_start) AS time, instance, round(max(gc_cpu_fraction) * 100, 2) AS gc_cpu_pct
FROM gc_storms FINAL
WHERE $__timeFilter(window_start) AND service IN (${service:singlequote}) AND instance IN (${instance:singlequote})
GROUP BY time, instance
ORDER BY time
