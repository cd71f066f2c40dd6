-- The last statement of a reader's session setup, after the checked settings and limits: no INSERT, no DDL,
-- no way back to readonly = 0. Settings stay changeable so clients (which read system.settings' readonly
-- column) keep sending theirs; the query endpoint checks every one against its allow-list first.
SET readonly = 2
