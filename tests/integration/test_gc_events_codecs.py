"""Migrations 100 (gc_events' Float64 columns without Gorilla) and 116 (LZ4 instead of ZSTD(1)) on a store that
already holds rows, on the real engine.

The codec change must apply to a store migrated before it without rewriting or changing a value: old parts keep
their codec until they are merged, and a merge of old and new parts gives the same rows.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.sources.files import Input, ingest_stream
from pipeline.sources.gctrace_fast import GctraceFastPath
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, migrate
from tests.conftest import DATA

FLOATS = ("since_start_s", "stw_sweep_term_ms", "mark_ms", "stw_mark_term_ms", "cpu_sweep_term_ms", "cpu_assist_ms",
          "cpu_background_ms", "cpu_idle_ms", "cpu_mark_term_ms")
START_NS = int((datetime.now(UTC) - timedelta(hours=2)).timestamp()) * 10**9


@pytest.fixture
def db_store(settings: Settings) -> Iterator[tuple[Store, RenderContext]]:
    db = f"t_{uuid.uuid4().hex[:12]}"
    st = Store(settings.clickhouse_dsn, db)
    yield st, RenderContext(db, settings.retention_days)
    st.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    st.close()


def _codecs(store: Store) -> dict[str, str]:
    return dict(store.rows("SELECT name, compression_codec FROM system.columns WHERE database = {d:String} "
                           "AND table = 'gc_events'", {"d": store.database}))


def _ingest(store: Store, settings: Settings, ctx: RenderContext, name: str) -> None:
    fast = GctraceFastPath(store, settings.sql_dir, ctx)
    ingest_stream(store, Input(name=str(DATA / "go-runtime" / name), instance=name), service="api",
                  start_ns=START_NS, fast=fast)


def test_float_columns_lose_gorilla_and_keep_their_values(settings, db_store, tmp_path) -> None:
    store, ctx = db_store
    before = tmp_path / "sql"
    shutil.copytree(settings.sql_dir, before)
    (before / "migrations" / "100_gc_events_float_codecs.sql").unlink()
    (before / "migrations" / "116_gc_events_lz4.sql").unlink()
    migrate(store, before, ctx)
    assert all("Gorilla" in _codecs(store)[column] for column in FLOATS)
    _ingest(store, settings, ctx, "go1.27.3-storm.txt")
    rows = f"SELECT * FROM {store.database}.gc_events ORDER BY instance, ts"
    old = store.rows(rows)

    upto_100 = tmp_path / "sql_100"  # the tree as of migration 100 (116 moves these columns to LZ4, tested below)
    shutil.copytree(settings.sql_dir, upto_100)
    (upto_100 / "migrations" / "116_gc_events_lz4.sql").unlink()
    assert [m.version for m in migrate(store, upto_100, ctx)] == [100]
    codecs = _codecs(store)
    assert all(codecs[column] == "CODEC(ZSTD(1))" for column in FLOATS)
    assert codecs["ts"] == "CODEC(DoubleDelta, ZSTD(1))" and "Delta" in codecs["heap_live_mb"]
    assert store.rows(rows) == old  # no value changed, nothing rewritten

    _ingest(store, settings, ctx, "go1.19.8-storm.txt")  # a part with the new codecs beside the old one
    both = store.rows(rows)
    store.command(f"OPTIMIZE TABLE {store.database}.gc_events FINAL")
    assert store.rows(rows) == both and len(both) > len(old) > 300
    assert migrate(store, upto_100, ctx) == []


def test_migration_file_names_the_columns_the_table_has() -> None:
    text = (Path(__file__).resolve().parents[2] / "sql" / "migrations" / "100_gc_events_float_codecs.sql").read_text()
    assert sorted(line.split()[2] for line in text.splitlines() if "MODIFY COLUMN" in line) == sorted(FLOATS)


def test_lz4_replaces_zstd_keeps_delta_and_every_value(settings, db_store, tmp_path) -> None:
    store, ctx = db_store
    before = tmp_path / "sql"
    shutil.copytree(settings.sql_dir, before)
    (before / "migrations" / "116_gc_events_lz4.sql").unlink()
    migrate(store, before, ctx)
    zstd = {column: codec for column, codec in _codecs(store).items() if "ZSTD(1)" in codec}
    assert len(zstd) == 21
    _ingest(store, settings, ctx, "go1.27.3-storm.txt")
    rows = f"SELECT * FROM {store.database}.gc_events ORDER BY instance, ts"
    old = store.rows(rows)

    assert [m.version for m in migrate(store, settings.sql_dir, ctx)] == [116]
    codecs = _codecs(store)
    assert {column: codecs[column] for column in zstd} == {column: codec.replace("ZSTD(1)", "LZ4")
                                                           for column, codec in zstd.items()}
    assert codecs["ts"] == "CODEC(DoubleDelta, LZ4)" and codecs["heap_live_mb"] == "CODEC(Delta(8), LZ4)"
    assert store.rows(rows) == old  # no value changed, nothing rewritten

    _ingest(store, settings, ctx, "go1.19.8-storm.txt")  # a part in LZ4 beside the ZSTD one
    both = store.rows(rows)
    store.command(f"OPTIMIZE TABLE {store.database}.gc_events FINAL")
    assert store.rows(rows) == both and len(both) > len(old) > 300
    assert migrate(store, settings.sql_dir, ctx) == []


def test_lz4_migration_names_every_zstd_column_with_its_type(settings, db_store, tmp_path) -> None:
    store, ctx = db_store
    before = tmp_path / "sql"
    shutil.copytree(settings.sql_dir, before)
    (before / "migrations" / "116_gc_events_lz4.sql").unlink()
    migrate(store, before, ctx)
    types = dict(store.rows("SELECT name, type FROM system.columns WHERE database = {d:String} "
                            "AND table = 'gc_events' AND compression_codec LIKE '%ZSTD(1)%'", {"d": store.database}))
    text = (Path(__file__).resolve().parents[2] / "sql" / "migrations" / "116_gc_events_lz4.sql").read_text()
    named = {}
    for line in text.splitlines():
        if "MODIFY COLUMN" in line:
            column, rest = line.split("MODIFY COLUMN", 1)[1].split(None, 1)
            named[column] = rest.rsplit(" CODEC(", 1)[0]
    assert named == types
