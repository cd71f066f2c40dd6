"""Fleet roll-up views (`sql/views/*.sql`), created or replaced by the job runner.

Views hold no data, so they are not migrations: replacing them on every scheduler start keeps them in step
with the SQL in the tree. A view whose source table does not exist yet (a detection not installed) is
skipped with a warning and retried next time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.sqlfiles import load_statements
from pipeline.store.client import Store, StoreError
from pipeline.store.migrate import RenderContext

log = logging.getLogger(__name__)


def apply_views(store: Store, sql_dir: Path, ctx: RenderContext) -> list[str]:
    """Create or replace every view; returns the files applied cleanly."""
    applied: list[str] = []
    for path in sorted((sql_dir / "views").glob("*.sql")):
        try:
            for statement in load_statements(sql_dir, f"views/{path.name}", ctx):
                store.command(statement)
            applied.append(path.name)
        except StoreError as exc:
            log.warning("view %s not applied: %s", path.name, str(exc).splitlines()[0])
    return applied
