"""A migrated database for a test, copied from one migrated once per session.

Why: running every migration (a hundred files, a few hundred statements) costs about 1.6 s of engine time, and
most in-process tests start from a freshly migrated database. The first database a test process asks for is
migrated for real into a template; every later one is made from the template's own `CREATE` statements (about
35 objects) and its rows (`schema_migrations`, seeded rows), which the engine does in a fraction of that time.
The copy is the schema that `migrate` produced in this very session, so a migration change can never be
skipped by it; tests of the migrations themselves call `migrate` directly and are not affected.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, migrate

# (store DSN, sql dir, retention days) -> the template database migrated in this process
_templates: dict[tuple[str, str, int], str] = {}

_OBJECTS = (
    "SELECT name, engine, create_table_query, total_rows FROM system.tables "
    "WHERE database = {db:String} AND NOT is_temporary ORDER BY metadata_modification_time, name"
)


def migrated_database(store: Store, dsn: str, sql_dir: Path, retention_days: int) -> None:
    """Give `store.database` the schema and seeded rows of a fully migrated database."""
    key = (dsn, str(sql_dir), retention_days)
    template = _templates.get(key)
    if template is None:
        template = f"t_template_{uuid.uuid4().hex[:12]}"
        migrate(store, sql_dir, RenderContext(template, retention_days))
        _templates[key] = template
    _copy(store, template, store.database)


def _copy(store: Store, template: str, target: str) -> None:
    objects = store.dicts(_OBJECTS, {"db": template})
    store.command(f"CREATE DATABASE IF NOT EXISTS {target}")
    # Tables first, with their rows, then the materialized views: a view created before the copy of its
    # source's rows would push them into its target a second time.
    views = [o for o in objects if o["engine"] == "MaterializedView"]
    for table in (o for o in objects if o["engine"] != "MaterializedView"):
        store.command(_renamed(str(table["create_table_query"]), template, target))
        if int(table["total_rows"] or 0):
            store.command(f"INSERT INTO {target}.{table['name']} SELECT * FROM {template}.{table['name']}")
    for view in views:
        store.command(_renamed(str(view["create_table_query"]), template, target))


def _renamed(query: str, template: str, target: str) -> str:
    """The template's name is unique (a random suffix), so a textual swap cannot touch anything else."""
    return query.replace(f"`{template}`.", f"`{target}`.").replace(f"{template}.", f"{target}.")
