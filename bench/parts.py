"""Which tables a bench run wrote parts to and merged, from the store's part list (bench/sql/parts_written.sql).

Why: a row's background merges (the engine's `MergeMutate` threads) are a large share of a Kafka or OTLP row's
CPU, and which table they are spent on (the data table, the batch plans, the migrations' own tables) and how
many rows they rewrite decides what cuts them: larger inserts, fewer bookkeeping rows, or table settings. A
merge's rows are those of the part it made, so `merged_rows` over the rows inserted is how many times a row was
rewritten during the run.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.store.client import Store

_SQL = (Path(__file__).resolve().parent / "sql" / "parts_written.sql").read_text()


def parts_written(store: Store) -> dict[str, dict[str, int]]:
    """Per table of the store's database: parts and rows inserted, parts and rows made by merges, active parts."""
    found = store.dicts(_SQL, {"database": store.database})
    return {str(row["table"]): {name: int(value) for name, value in row.items() if name != "table"}
            for row in found}


def describe(parts: dict[str, dict[str, int]]) -> str:
    """One line: `table inserted parts/rows, merged parts/rows` for every table a run wrote."""
    return "; ".join(f"{table} {p['inserted_parts']} parts / {p['inserted_rows']:,} rows inserted, "
                     f"{p['merged_parts']} merges / {p['merged_rows']:,} rows, {p['active_parts']} active"
                     for table, p in parts.items() if p["inserted_parts"] or p["merged_parts"])
