"""Migrations on the real embedded engine: ordered, recorded, idempotent, loud on failure."""

from pathlib import Path

import pytest

from pipeline.store.client import Store
from pipeline.store.migrate import MigrationError, RenderContext, migrate


def test_migrations_recorded_and_rerun_is_a_no_op(store: Store, settings) -> None:
    sql = f"SELECT version FROM {settings.database}.schema_migrations FINAL ORDER BY version"
    versions = [r[0] for r in store.rows(sql)]
    assert versions[0] == 1 and len(versions) == len(set(versions))
    assert migrate(store, settings.sql_dir, RenderContext(settings.database, settings.retention_days)) == []
    tables = {r[0] for r in store.rows("SELECT name FROM system.tables WHERE database = {d:String}",
                                       {"d": settings.database})}
    assert "quarantine" in tables


def test_failing_statement_names_file_and_statement(store: Store, tmp_path: Path, settings) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "001_ok.sql").write_text("CREATE TABLE IF NOT EXISTS {{db}}.ok (x UInt8) "
                                                        "ENGINE = MergeTree ORDER BY x;")
    (tmp_path / "migrations" / "002_broken.sql").write_text("SELECT 1;\nCREATE TABLE {{db}}.bad (x Nope) "
                                                            "ENGINE = MergeTree ORDER BY x;")
    ctx = RenderContext(settings.database + "_m", 1)
    with pytest.raises(MigrationError) as err:
        migrate(store, tmp_path, ctx)
    assert "002_broken.sql: statement 2 of 2" in str(err.value) and "Nope" in str(err.value)
    assert store.rows(f"SELECT version FROM {ctx.database}.schema_migrations") == [(1,)]
    store.command(f"DROP DATABASE {ctx.database} SYNC")


def test_dedup_token_makes_replayed_insert_land_once(store: Store, settings) -> None:
    cols = {"received_at": [__import__("datetime").datetime.now()], "source": ["t"], "signal": ["s"],
            "service": ["a"], "instance": ["i"], "reason": ["r"], "raw": ["x"], "raw_bytes": [1]}
    for _ in range(3):
        store.insert_columns("quarantine", cols, dedup_token="k/1")
    assert store.scalar(f"SELECT count() FROM {settings.database}.quarantine") == 1
