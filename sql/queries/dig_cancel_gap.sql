SELECT *
FROM {{db}}.cancel_gap_spans FINAL
WHERE parent_service = {parent_service:String} AND parent_operation = {parent_operation:String}
  AND child_service = {child_service:String} AND child_operation = {child_operation:String}
  AND bucket >= toDateTime({since:DateTime64(3, 'UTC')})
ORDER BY bucket DESC
LIMIT 100
