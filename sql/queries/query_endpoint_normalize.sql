-- The engine's canonical single-statement text of a reader's statement: comments gone, keywords fixed,
-- more than one statement or a syntax error refused. What the query endpoint checks is what then runs.
SELECT formatQuerySingleLine({q:String})
