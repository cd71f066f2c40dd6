"""A second migrated database in the session's embedded store: the equivalence tests store the reference's
rows in one database and the fast path's in the other, then compare them table by table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from pipeline.config import Settings
from pipeline.store.client import Store
from tests.schema_copy import migrated_database


@pytest.fixture
def second_store(settings: Settings) -> Iterator[Store]:
    """Another migrated database in the session's store, dropped when the test ends."""
    db = f"t_{uuid.uuid4().hex[:12]}"
    st = Store(settings.clickhouse_dsn, db)
    migrated_database(st, settings.clickhouse_dsn, settings.sql_dir, settings.retention_days)
    yield st
    st.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    st.close()
