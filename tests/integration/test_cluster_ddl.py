"""Cluster mode: every migration renders to Replicated local tables with Distributed fronts ON CLUSTER,
and every rendered statement parses in the real engine."""

from __future__ import annotations

import re

import pytest

from pipeline.config import REPO_SQL_DIR
from pipeline.store.client import Store
from pipeline.store.migrate import LOCAL_SUFFIX, RenderContext, discover, render_statements

pytestmark = pytest.mark.integration

CLUSTER = RenderContext(database="fleetwatch", ttl_days=30, cluster="fleet")
_CREATE_RE = re.compile(r"^CREATE TABLE IF NOT EXISTS fleetwatch\.(\w+) ON CLUSTER '?fleet'? ", re.I)


def test_every_migration_renders_for_a_cluster_and_parses(store: Store) -> None:
    migrations = discover(REPO_SQL_DIR)
    assert migrations
    locals_: set[str] = set()
    fronts: dict[str, str] = {}
    for mig in migrations:
        for statement in render_statements(mig.text, CLUSTER):
            assert "{{" not in statement, (mig.path.name, statement)
            formatted = store.scalar("SELECT formatQuerySingleLine({q:String})", {"q": statement})
            assert formatted, (mig.path.name, statement)
            if formatted.startswith(("CREATE", "ALTER")):
                assert re.search(r"ON CLUSTER '?fleet'? ", formatted), formatted
            match = _CREATE_RE.match(formatted)
            if not match:
                continue
            name = match.group(1)
            if name.endswith(LOCAL_SUFFIX):
                assert re.search(r"ENGINE = Replicated\w*MergeTree", formatted), formatted
                locals_.add(name[: -len(LOCAL_SUFFIX)])
            elif "ENGINE = Distributed" in formatted:
                assert f"AS fleetwatch.{name}{LOCAL_SUFFIX}" in formatted, formatted
                assert f"Distributed('fleet', 'fleetwatch', '{name}{LOCAL_SUFFIX}', cityHash64(" in formatted
                fronts[name] = formatted
    assert locals_, "no data tables found"
    assert set(fronts) == locals_, "every local table has a Distributed front and vice versa"
    for table in ("runtime_metrics", "cancel_events", "otel_logs"):
        assert table in fronts


def test_single_node_rendering_is_unchanged() -> None:
    single = RenderContext(database="fleetwatch", ttl_days=30)
    for mig in discover(REPO_SQL_DIR):
        for statement in render_statements(mig.text, single):
            assert LOCAL_SUFFIX + " " not in statement and "Distributed(" not in statement
            assert "ON CLUSTER" not in statement and "Replicated" not in statement
