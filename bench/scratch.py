"""Scratch space for the benches that run in one process: a temporary directory, removed afterwards, and a migrated
embedded store inside it, closed afterwards (one store path per process, as the product opens it)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, migrate

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed with everything in it when the block ends."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class ScratchStore:
    store: Store
    ctx: RenderContext  # what the SQL files are rendered with (database `fleetwatch`, 30 days)
    dir: Path  # the scratch directory (the store is in its `store` subdirectory)


@contextmanager
def scratch_store(prefix: str) -> Iterator[ScratchStore]:
    """An embedded store in a scratch directory, migrated before the block runs and closed after it."""
    with scratch_dir(prefix) as tmp:
        store = Store(f"chdb://{tmp / 'store'}", "fleetwatch")
        try:
            ctx = RenderContext("fleetwatch", 30)
            migrate(store, SQL_DIR, ctx)
            yield ScratchStore(store, ctx, tmp)
        finally:
            store.close()
