-- The last statement of a reader's session setup: from here on the engine refuses every setting change,
-- including the statement's own SETTINGS clauses (those already applied with the same values pass).
SET readonly = 1
