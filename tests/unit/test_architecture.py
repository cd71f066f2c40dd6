"""The walls in docs/architecture.md, checked on the import graph so they cannot erode quietly."""

from __future__ import annotations

import ast
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"

# Modules that do I/O (or open sockets, files, processes); the normalizers must stay pure.
IO_MODULES = {
    "socket", "subprocess", "threading", "asyncio", "http", "urllib", "os", "shutil", "sqlite3",
    "clickhouse_connect", "chdb", "kafka", "grpc", "requests", "pipeline.store", "pipeline.sink",
    "pipeline.sources", "pipeline.jobs", "pipeline.app", "pipeline.telemetry",
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def hits(names: set[str], forbidden: set[str]) -> set[str]:
    return {n for n in names for f in forbidden if n == f or n.startswith(f + ".")}


def modules(package: str) -> list[Path]:
    return sorted((PIPELINE / package).rglob("*.py")) if (PIPELINE / package).is_dir() else [PIPELINE / package]


def test_normalizers_import_nothing_with_io() -> None:
    bad = {str(p.relative_to(PIPELINE)): hits(imports_of(p), IO_MODULES) for p in modules("normalize")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_store_knows_clickhouse_connect() -> None:
    bad = [
        str(p.relative_to(PIPELINE))
        for p in PIPELINE.rglob("*.py")
        if hits(imports_of(p), {"clickhouse_connect", "chdb"}) and "store" not in p.relative_to(PIPELINE).parts
    ]
    assert bad == []


def test_nothing_in_the_package_imports_the_cli() -> None:
    bad = [
        str(p.relative_to(PIPELINE))
        for p in PIPELINE.rglob("*.py")
        if p.name != "cli.py" and hits(imports_of(p), {"pipeline.cli"})
    ]
    assert bad == []


def test_sources_and_jobs_do_not_reach_around_the_sink_and_store() -> None:
    for package in ("sources", "jobs"):
        for path in modules(package):
            assert not hits(imports_of(path), {"clickhouse_connect", "chdb"}), path
