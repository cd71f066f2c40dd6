-- Backtest: every instance and signal the leak-trend job flagged, with the end of every flagged evaluation.
SELECT service, instance, signal, arraySort(groupArray(window_end)) AS flagged_at
FROM {{db}}.leak_trends FINAL
WHERE leaking = 1
GROUP BY service, instance, signal
