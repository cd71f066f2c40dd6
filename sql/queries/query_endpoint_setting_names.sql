-- Every setting name the engine knows (aliases included): the query endpoint answers an unknown name with
-- UNKNOWN_SETTING, as a ClickHouse server does, before its own allow-list refuses a known one.
SELECT name FROM system.settings
