-- How long children ran past the cancellation (ms), one value per overrun, for a histogram.
SELECT overrun_ms
FROM cancel_gap_spans FINAL
WHERE $__timeFilter(bucket) AND is_overrun = 1 AND child_service IN (${service:singlequote})
ORDER BY overrun_ms DESC
LIMIT 10000
