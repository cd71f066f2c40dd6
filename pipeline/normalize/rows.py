"""Rows on their way to the store, kept as columns.

Normalizers (pure functions) return a `Rows`: for each destination table, a dict of column name to a list
of values, plus quarantine rows. Column lists are what clickhouse-connect inserts fastest
(`column_oriented=True`), and appending a value to a list is the cheapest thing a per-line hot path can do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

QUARANTINE = "quarantine"
QUARANTINE_COLUMNS = (
    "received_at", "source", "signal", "service", "instance", "reason", "raw", "raw_bytes",
    "location", "topic", "partition", "offset",
)
RAW_LIMIT = 64 * 1024
# A table whose rows each stand for several rows of the store (plain gc lines: one row per resource, one gc row
# per line) gives their number in this column, so counts, batch sizes and backpressure count stored rows.
WEIGHT = "_rows"


@dataclass
class Rows:
    """Columns per table. Every row appended to one table must carry the same column names."""

    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def append(self, table: str, row: Mapping[str, Any]) -> None:
        cols = self.tables.get(table)
        if cols is None:
            self.tables[table] = {name: [value] for name, value in row.items()}
            return
        if len(row) != len(cols):
            raise ValueError(f"{table}: row has columns {sorted(row)}, table batch has {sorted(cols)}")
        for name, value in row.items():
            cols[name].append(value)

    def columns(self, table: str, names: Iterable[str]) -> dict[str, list[Any]]:
        """The column lists of `table`, created empty with `names` if the table is new."""
        cols = self.tables.get(table)
        if cols is None:
            cols = {name: [] for name in names}
            self.tables[table] = cols
        return cols

    def extend(self, other: Rows) -> None:
        for table, cols in other.tables.items():
            mine = self.tables.get(table)
            if mine is None:
                self.tables[table] = {name: list(values) for name, values in cols.items()}
                continue
            if mine.keys() != cols.keys():
                raise ValueError(f"{table}: cannot merge batches with different columns")
            for name, values in cols.items():
                mine[name].extend(values)

    def quarantine(
        self,
        *,
        source: str,
        signal: str,
        reason: str,
        raw: str | bytes,
        received_at: datetime,
        service: str = "",
        instance: str = "",
        location: str = "",
        topic: str = "",
        partition: int = -1,
        offset: int = -1,
    ) -> None:
        """Record one rejected input with the reason it was rejected. `received_at` is passed in: normalizers
        never read the clock."""
        if isinstance(raw, bytes):
            raw_bytes = len(raw)
            text = raw[:RAW_LIMIT].decode("utf-8", errors="backslashreplace")
        else:
            raw_bytes = len(raw.encode("utf-8", errors="surrogatepass"))
            text = raw[:RAW_LIMIT].encode("utf-8", errors="backslashreplace").decode("utf-8")
        self.append(
            QUARANTINE,
            {
                "received_at": received_at,
                "source": source,
                "signal": signal,
                "service": service,
                "instance": instance,
                "reason": reason,
                "raw": text,
                "raw_bytes": raw_bytes,
                "location": location,
                "topic": topic,
                "partition": partition,
                "offset": offset,
            },
        )

    def count(self, table: str) -> int:
        cols = self.tables.get(table)
        if not cols:
            return 0
        weights = cols.get(WEIGHT)
        return sum(weights) if weights is not None else len(next(iter(cols.values())))

    def total(self) -> int:
        return sum(self.count(t) for t in self.tables)

    def counts(self) -> dict[str, int]:
        return {t: self.count(t) for t in self.tables if self.count(t)}

    def __bool__(self) -> bool:
        return self.total() > 0
