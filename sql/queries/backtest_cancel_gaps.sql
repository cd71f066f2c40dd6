-- Backtest: every call edge the cancel-gaps job flagged, with the end of every flagged bucket.
SELECT child_service AS service, parent_service, parent_operation, child_operation,
       arraySort(groupArray(bucket + toIntervalSecond(bucket_seconds))) AS flagged_at
FROM {{db}}.cancel_gaps FINAL
WHERE flagged = 1
GROUP BY child_service, parent_service, parent_operation, child_operation
