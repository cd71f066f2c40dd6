-- Real log plumbing (issue 15): what a log shipper wrote in front of a runtime line is kept with the row
-- (line_prefix, '' when the line starts with its runtime head), and the scavenger's released amount is
-- kept exactly in KiB, for Go 1.13's `scvg: N KB released` as well as the `MB released` of other versions.
ALTER TABLE {{db}}.gc_events {{on_cluster}} ADD COLUMN IF NOT EXISTS line_prefix String DEFAULT '';
ALTER TABLE {{db}}.scavenger_events {{on_cluster}} ADD COLUMN IF NOT EXISTS line_prefix String DEFAULT '';
ALTER TABLE {{db}}.pacer_events {{on_cluster}} ADD COLUMN IF NOT EXISTS line_prefix String DEFAULT '';
ALTER TABLE {{db}}.scavenger_events {{on_cluster}} ADD COLUMN IF NOT EXISTS released_delta_kib Nullable(UInt64);
