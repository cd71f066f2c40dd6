"""Fleetwatch's OTel tables against the Collector exporter's own DDL, created side by side in the engine.

Every column of the exporter's tables exists in Fleetwatch's with the same type (Fleetwatch pins
DateTime64 columns to UTC; the exporter leaves them in the server's zone), in the same order, before any
Fleetwatch-only column; partition keys, sorting keys (otel_traces may append Timestamp) and every skip
index match. Fleetwatch-only columns all have defaults, so the exporter's INSERTs (which name only its
own columns) work. The exporter's DDL is tests/data/collector_ddl/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.store.client import Store

pytestmark = pytest.mark.integration

DDL = Path(__file__).resolve().parents[1] / "data" / "collector_ddl"
TABLES = sorted(p.stem for p in DDL.glob("*.sql"))


def _columns(store: Store, db: str, table: str) -> list[tuple[str, str, str]]:
    return [(name, type_.replace(", 'UTC'", ""), kind) for name, type_, kind in store.rows(
        "SELECT name, type, default_kind FROM system.columns WHERE database = {d:String} AND table = {t:String} "
        "ORDER BY position", {"d": db, "t": table})]


def _table(store: Store, db: str, table: str) -> tuple[str, str]:
    return store.rows("SELECT partition_key, sorting_key FROM system.tables WHERE database = {d:String} AND "
                      "name = {t:String}", {"d": db, "t": table})[0]


def _indexes(store: Store, db: str, table: str) -> set[tuple[str, str, str, int]]:
    return set(store.rows("SELECT name, expr, type_full, granularity FROM system.data_skipping_indices "
                          "WHERE database = {d:String} AND table = {t:String}", {"d": db, "t": table}))


def test_tables_match_the_collector_exporter_ddl(store: Store) -> None:
    assert len(TABLES) == 8
    ref = store.database + "_collector"
    store.command(f"CREATE DATABASE IF NOT EXISTS {ref}")
    try:
        for table in TABLES:
            store.command((DDL / f"{table}.sql").read_text().replace("{db}", ref))
            theirs, ours = _columns(store, ref, table), _columns(store, store.database, table)
            assert ours[: len(theirs)] == theirs, table
            extras = ours[len(theirs):]
            assert all(kind in ("DEFAULT", "MATERIALIZED", "ALIAS") or name in _NESTED_DEFAULTS
                       for name, _, kind in extras), (table, extras)
            their_partition, their_sort = _table(store, ref, table)
            our_partition, our_sort = _table(store, store.database, table)
            assert our_partition == their_partition, table
            assert our_sort == their_sort or (table == "otel_traces" and our_sort == f"{their_sort}, Timestamp"), \
                (table, our_sort, their_sort)
            assert _indexes(store, ref, table) <= _indexes(store, store.database, table), table
    finally:
        store.command(f"DROP DATABASE IF EXISTS {ref} SYNC")


# Map and Nested columns without an explicit DEFAULT still default to empty on insert.
_NESTED_DEFAULTS = {"ScopeAttributes"}
