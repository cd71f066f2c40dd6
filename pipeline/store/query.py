"""Reading the store for `fleetwatch sql` and `fleetwatch triage`.

When the embedded store is held by a running `fleetwatch run`, it cannot be opened here (one process per
store path); the running pipeline serves the ClickHouse HTTP interface instead, and readers go through it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from pipeline.config import Settings
from pipeline.present import FORMATTERS
from pipeline.store.client import Store


def open_reader(settings: Settings) -> Store:
    """A store handle for reading: the store itself, or the running pipeline's query endpoint."""
    return Store.from_settings(settings)


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
