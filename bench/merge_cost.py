"""What gc_events' background merges cost per stored line as a table grows: `python -m bench.merge_cost`.

Why: the file row's CPU per million lines is higher for 10 M lines than for 1 M, and the thread that grows is the
engine's merges (`MergeMutate`): a hundred 100,000-row parts are merged over more levels than ten. This measures
only that, with no parse: 100,000 real gc lines are parsed once by the product's chunk statement, kept in a Memory
table, then inserted `--parts` times (one instance per insert, as one file per instance does) into a fresh copy
of gc_events per variant, whose settings come from `--variant name=SETTINGS` (a table's MergeTree settings, e.g.
`merge_selector_base = 10`); the merge threads' CPU is read from /proc during the inserts and until no merge has
run for a second. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.cli_profile import thread_cpu
from bench.data import instance_lines, span_seconds
from bench.measure import Stopwatch
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, migrate

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
PART_ROWS = 100_000


def merge_cpu() -> float:
    return sum(cpu for name, cpu in thread_cpu().values() if name.startswith("MergeMutate"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=100, help="inserts of 100,000 rows each")
    parser.add_argument("--variant", action="append", default=[],
                        help="name=MergeTree settings of the table copy (repeatable); 'as_is' is always first")
    args = parser.parse_args(argv)
    variants = [("as_is", ""), *(tuple(v.split("=", 1)) for v in args.variant)]
    tmp = Path(tempfile.mkdtemp(prefix="merge-cost-"))
    try:
        store = Store(f"chdb://{tmp / 'store'}", "fleetwatch")
        ctx = RenderContext("fleetwatch", 30)
        migrate(store, SQL_DIR, ctx)
        db = store.database
        start_us = int(datetime.now(UTC).timestamp() - span_seconds(PART_ROWS) - 600) * 1_000_000
        store.insert_select_lines(load_statement(SQL_DIR, "fastpath/gctrace_chunk.sql", ctx),
                                  ("\n".join(instance_lines(PART_ROWS)) + "\n").encode(),
                                  parameters={"service": "bench", "instance": "x", "source": "file", "received_ms": 0,
                                              "start_us": start_us, "incarnation": 1, "last_num": -1,
                                              "last_since_us": -1})
        store.command(f"CREATE TABLE {db}.merge_cost_rows ENGINE = Memory AS SELECT * FROM {db}.gc_events")
        million = args.parts * PART_ROWS / 1e6
        print(f"{args.parts} inserts of {PART_ROWS:,} rows; CPU s per M rows")
        print("| variant | settings | process, inserts | merges during the inserts | merges, settled | "
              "active parts | largest part, rows |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, settings in variants:
            table = f"merge_cost_{name}"
            store.command(f"CREATE TABLE {db}.{table} AS {db}.gc_events")
            if settings.strip():
                store.command(f"ALTER TABLE {db}.{table} MODIFY SETTING {settings}")
            before = merge_cpu()
            with Stopwatch() as sw:
                for k in range(args.parts):
                    store.command(f"INSERT INTO {db}.{table} SELECT * REPLACE ('inst-{k:04d}' AS instance) "
                                  f"FROM {db}.merge_cost_rows")
            during = merge_cpu() - before
            quiet = 0
            while quiet < 10:
                running = store.scalar(f"SELECT count() FROM system.merges WHERE database = '{db}' "
                                       f"AND table = '{table}'")
                quiet = 0 if running else quiet + 1
                time.sleep(0.1)
            settled = merge_cpu() - before
            parts = store.dicts(f"SELECT count() AS parts, max(rows) AS largest FROM system.parts "
                                f"WHERE database = '{db}' AND table = '{table}' AND active")[0]
            print(f"| {name} | {settings or '(as migrated)'} | {sw.cpu / million:.2f} | {during / million:.2f} | "
                  f"{settled / million:.2f} | {parts['parts']} | {parts['largest']:,} |", flush=True)
            store.command(f"DROP TABLE {db}.{table} SYNC")
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
