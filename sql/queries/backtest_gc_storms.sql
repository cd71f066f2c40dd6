-- Backtest: every instance the GC-storm job flagged, per kind, with the end of every flagged window.
SELECT service, instance, kind, arraySort(groupArray(window_end)) AS flagged_at
FROM {{db}}.gc_storms FINAL
WHERE storm = 1
GROUP BY service, instance, kind
