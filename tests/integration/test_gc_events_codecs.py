"""Migration 100 (gc_events' Float64 columns without Gorilla) on a store that already holds rows, on the real engine.

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
    migrate(store, before, ctx)
    assert all("Gorilla" in _codecs(store)[column] for column in FLOATS)
    _ingest(store, settings, ctx, "go1.27.3-storm.txt")
    rows = f"SELECT * FROM {store.database}.gc_events ORDER BY instance, ts"
    old = store.rows(rows)

    assert [m.version for m in migrate(store, settings.sql_dir, ctx)] == [100]
    codecs = _codecs(store)
    assert all(codecs[column] == "CODEC(ZSTD(1))" for column in FLOATS)
    assert codecs["ts"] == "CODEC(DoubleDelta, ZSTD(1))" and "Delta" in codecs["heap_live_mb"]
    assert store.rows(rows) == old  # no value changed, nothing rewritten

    _ingest(store, settings, ctx, "go1.19.8-storm.txt")  # a part with the new codecs beside the old one
    both = store.rows(rows)
    store.command(f"OPTIMIZE TABLE {store.database}.gc_events FINAL")
    assert store.rows(rows) == both and len(both) > len(old) > 300
    assert migrate(store, settings.sql_dir, ctx) == []


def test_migration_file_names_the_columns_the_table_has() -> None:
    text = (Path(__file__).resolve().parents[2] / "sql" / "migrations" / "100_gc_events_float_codecs.sql").read_text()
    assert sorted(line.split()[2] for line in text.splitlines() if "MODIFY COLUMN" in line) == sorted(FLOATS)
