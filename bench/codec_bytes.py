"""gc_events' bytes on disk per row of real gctrace, per codec rule: `python -m bench.codec_bytes`.

Why: bench/merge_cost.py's rows repeat a few hundred real lines across instances, which flatters every codec's
ratio (the same values recur); a codec is judged on what real runtimes print. This ingests every capture under
`--captures` (default tests/data/go-runtime: Go 1.19 and 1.27, steady, storms, forced, interleaved) through the
product's file path, one instance per capture, then copies the rows into a table per rule of
bench/codec_variants.py, merges each copy into one wide part (`OPTIMIZE ... FINAL`) and prints the compressed
bytes per row, in all and for the columns the rules change most.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.codec_variants import RULES, modify_clauses
from bench.scratch import scratch_store
from pipeline.sources.files import Input, ingest_stream
from pipeline.sources.gctrace_fast import GctraceFastPath

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "go-runtime"
SHOWN = ("ts", "gc_num", "since_start_s", "stw_sweep_term_ms", "cpu_assist_ms", "heap_live_mb", "received_at")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=Path, default=CAPTURES, help="directory of gctrace captures (*.txt)")
    parser.add_argument("--rule", action="append", default=[], help=f"codec rules to compare (default: all of "
                        f"{', '.join(RULES)})")
    args = parser.parse_args(argv)
    with scratch_store("codec-bytes-") as scratch:
        store, ctx = scratch.store, scratch.ctx
        db = store.database
        fast = GctraceFastPath(store, SQL_DIR, ctx)
        start_ns = int((datetime.now(UTC) - timedelta(hours=6)).timestamp()) * 10**9
        for path in sorted(args.captures.glob("*.txt")):
            ingest_stream(store, Input(name=str(path), instance=path.stem), service="codec-bytes",
                          start_ns=start_ns, fast=fast)
        rows = int(store.scalar(f"SELECT count() FROM {db}.gc_events"))
        columns = store.dicts(f"SELECT name, type, compression_codec FROM system.columns "
                              f"WHERE database = '{db}' AND table = 'gc_events' ORDER BY position")
        print(f"{rows:,} gc lines of {args.captures}; compressed bytes per row, one wide part per rule")
        print("| codecs | bytes per row | " + " | ".join(f"`{c}`" for c in SHOWN) + " |")
        print("|---|---:|" + "---:|" * len(SHOWN))
        for rule in ["", *(args.rule or RULES)]:
            table = f"codec_bytes_{rule or 'as_is'}"
            store.command(f"CREATE TABLE {db}.{table} AS {db}.gc_events")
            clauses = modify_clauses(rule, columns) if rule else []
            if clauses:
                store.command(f"ALTER TABLE {db}.{table} " + ", ".join(clauses))
            store.command(f"ALTER TABLE {db}.{table} MODIFY SETTING min_bytes_for_wide_part = 0")
            store.command(f"INSERT INTO {db}.{table} SELECT * FROM {db}.gc_events")
            store.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
            total = store.scalar(f"SELECT sum(data_compressed_bytes) FROM system.parts "
                                 f"WHERE database = '{db}' AND table = '{table}' AND active")
            per_column = dict(store.rows(f"SELECT name, data_compressed_bytes FROM system.columns "
                                         f"WHERE database = '{db}' AND table = '{table}'"))
            print(f"| {rule or 'as migrated'} | {int(total) / rows:.1f} | "
                  + " | ".join(f"{int(per_column[c]) / rows:.2f}" for c in SHOWN) + " |", flush=True)
            store.command(f"DROP TABLE {db}.{table} SYNC")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
