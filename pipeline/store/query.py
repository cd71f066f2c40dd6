"""Reading the store for `fleetwatch sql` and `fleetwatch triage`.

When the embedded store is held by a running `fleetwatch run`, it cannot be opened here (one process per
store path); the running pipeline serves the ClickHouse HTTP interface instead, and readers go through it.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pipeline.config import Settings
from pipeline.present import FORMATTERS
from pipeline.store.client import OPENED_HERE, Store, StoreUnavailable


def open_reader(settings: Settings) -> Store:
    """A store handle for reading: the store itself, or the running pipeline's query endpoint.

    Opening the embedded store fails when `fleetwatch run` holds it; then the same database is read through
    the ClickHouse HTTP interface that process serves at `query.http`.
    """
    store = Store.from_settings(settings)
    if store.path is None or store.path == ":memory:" or store.path in OPENED_HERE:
        return store
    # Checked before opening: a refused open costs seconds and makes the engine print to stderr.
    if not held_by_another_process(store.path):
        return store
    if not settings.query.http:
        raise StoreUnavailable(
            f"the store at {store.path} is held by another process and no query endpoint is configured "
            "(set --query-http / FLEETWATCH_QUERY_HTTP to the running pipeline's address)"
        )
    return endpoint_store(settings)


def held_by_another_process(path: str) -> bool:
    """Whether a running engine holds the store: it keeps an exclusive flock on `<path>/status`."""
    status = os.path.join(path, "status")
    if not os.path.exists(status):
        return False
    with open(status, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def endpoint_store(settings: Settings) -> Store:
    """A Store reading through a running pipeline's query endpoint, with the configured credentials."""
    user = quote(settings.query.user or "default", safe="")
    password = settings.query.password.get_secret_value() if settings.query.password else ""
    credentials = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    return Store(f"http://{credentials}{settings.query.http}", settings.database)


def run_query(
    settings: Settings, sql: str, parameters: Mapping[str, Any] | None = None
) -> tuple[list[str], list[tuple]]:
    store = open_reader(settings)
    try:
        result = store.query(sql, parameters)
        return list(result.column_names), list(result.result_rows)
    finally:
        store.close()


def sql_command(settings: Settings, args: argparse.Namespace) -> int:
    names, rows = run_query(settings, args.query)
    text = FORMATTERS[args.format](names, rows)
    if text:
        sys.stdout.write(text + "\n")
    return 0
