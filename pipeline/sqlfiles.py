"""Loading the SQL that lives in `sql/` (queries/, views/): read, render the `{{db}}` placeholders, split.

Kept apart from migrations so readers (triage, the scheduler) use the same templates without importing the
migration runner's bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.store.migrate import RenderContext, render, split_statements


def load_statement(sql_dir: Path, relative: str, ctx: RenderContext) -> str:
    """The single statement in `sql/<relative>`, rendered. A file with several statements is an error."""
    statements = load_statements(sql_dir, relative, ctx)
    if len(statements) != 1:
        raise ValueError(f"{relative}: expected one statement, found {len(statements)}")
    return statements[0]


def load_statements(sql_dir: Path, relative: str, ctx: RenderContext) -> list[str]:
    path = sql_dir / relative
    return split_statements(render(path.read_text(encoding="utf-8"), ctx))
