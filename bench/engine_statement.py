"""The gctrace engine statement's cost per line and per statement, and its variants: `python -m bench.engine_statement`.

Why: the file, Kafka and OTLP paths store plain gc lines with one engine statement of the same family
(sql/fastpath/gctrace_chunk.sql, observed_batch.sql, otlp_gc_insert.sql, sharing gc_recognise.sql and
gc_fields.sql). Its cost has two parts, and both are measured here on the same real gc lines (bench.data):

* per line: 1,000,000 lines in statements of `--chunk-lines` (200,000, the file path's batch), CPU s per M lines:
  the best round, and the sum over the statements of each one's least CPU in any round (steadier under load);
* per statement: the median CPU of one statement over 3 lines and over 1,000 lines (the fixed cost: planning the
  large SELECT, the INSERT pipeline, the part), in ms.

Rows, best of `--repeat` rounds (the rounds interleave the rows, so a busy machine disturbs them alike):

* read      -- the lines into a Null table (`INSERT ... SELECT line FROM input(...)`): reading the input alone
* parse     -- the product statement into a Null table with gc_events' columns: parse, checks and the conversion
               to the table's types, no part written
* write     -- the already-parsed rows (a Memory table) into gc_events: the typed MergeTree write alone
* product   -- sql/fastpath/gctrace_chunk.sql as the file path runs it
* <variant> -- the product statement with the files of bench/sql/engine_statement/<variant>/ laid over sql/
               (the forms tried and not kept, or kept; docs/benchmarks.md "The engine statement")

CPU is the process's user + system time (the engine's threads included).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.data import instance_lines, span_seconds
from bench.scratch import scratch_store
from pipeline.sqlfiles import load_statement

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
VARIANT_DIR = Path(__file__).resolve().parent / "sql" / "engine_statement"
CHUNK = "fastpath/gctrace_chunk.sql"
SETTINGS_FILE = "settings.txt"
BASE_ROWS = ("read", "parse", "write", "product")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def variants() -> list[str]:
    return sorted(p.name for p in VARIANT_DIR.iterdir() if p.is_dir()) if VARIANT_DIR.is_dir() else []


def overlay(variant: str, into: Path) -> Path:
    """sql/ with the variant's files laid over it, in a directory of its own.

    A variant that only changes the chunk statement's settings holds them in `settings.txt` (one line, e.g.
    `compile_expressions = 0`), put in front of the product statement's own: no copy of the statement to keep in
    step with it."""
    tree = into / f"sql-{variant}"
    if not tree.exists():
        shutil.copytree(SQL_DIR, tree)
        shutil.copytree(VARIANT_DIR / variant, tree, dirs_exist_ok=True, ignore=shutil.ignore_patterns(SETTINGS_FILE))
        extra = VARIANT_DIR / variant / SETTINGS_FILE
        if extra.exists():
            chunk = tree / CHUNK
            text = chunk.read_text()
            if "\nSETTINGS " not in text:
                raise SystemExit(f"{CHUNK} has no SETTINGS clause for variant {variant}")
            chunk.write_text(text.replace("\nSETTINGS ", f"\nSETTINGS {extra.read_text().strip()}, ", 1))
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--chunk-lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fixed-runs", type=int, default=15)
    parser.add_argument("--null", action="store_true",
                        help="every statement into a Null table with gc_events' columns: the parse alone, without the "
                             "write or the background merges of the rows before it")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join((*BASE_ROWS, *variants()))}")
    args = parser.parse_args(argv)
    wanted = args.only.split(",") if args.only else [*BASE_ROWS, *variants()]
    lines = instance_lines(args.lines)
    chunks = [("\n".join(lines[i:i + args.chunk_lines]) + "\n").encode()
              for i in range(0, len(lines), args.chunk_lines)]
    small = {n: ("\n".join(lines[:n]) + "\n").encode() for n in (3, 1000)}
    with scratch_store("engine-statement-") as scratch:
        store, ctx, tmp = scratch.store, scratch.ctx, scratch.dir
        db = store.database
        store.command(f"CREATE TABLE {db}.bench_gc_null AS {db}.gc_events ENGINE = Null")
        store.command(f"CREATE TABLE {db}.bench_lines_null (line String) ENGINE = Null")
        store.command(f"CREATE TABLE {db}.bench_parsed AS {db}.gc_events ENGINE = Memory")
        start = datetime.now(UTC) - timedelta(seconds=span_seconds(args.lines) + 600)
        params = {"service": "bench", "instance": "i", "source": "file", "received_ms": 0,
                  "start_us": int(start.timestamp()) * 1_000_000, "incarnation": 1, "last_num": -1,
                  "last_since_us": -1}
        product = load_statement(SQL_DIR, CHUNK, ctx)
        # The parsed rows for `write`: the product's own rows, kept in memory.
        for chunk in chunks:
            store.insert_select_lines(product, chunk, parameters=params)
        store.command(f"INSERT INTO {db}.bench_parsed SELECT * FROM {db}.gc_events")
        statements: dict[str, str] = {
            "read": f"INSERT INTO {db}.bench_lines_null SELECT line FROM input('line String') FORMAT LineAsString",
            "parse": product.replace(f"INSERT INTO {db}.gc_events", f"INSERT INTO {db}.bench_gc_null", 1),
            "product": product,
        }
        for name in wanted:
            if name not in statements and name != "write":
                statements[name] = load_statement(overlay(name, tmp), CHUNK, ctx)
        if args.null:
            for name, sql in statements.items():
                statements[name] = sql.replace(f"INSERT INTO {db}.gc_events", f"INSERT INTO {db}.bench_gc_null", 1)

        def one_round(name: str) -> tuple[float, dict[int, float], list[float]]:
            store.command(f"TRUNCATE TABLE {db}.gc_events")
            step: Callable[[int, bytes], None]
            if name == "write":
                def step(k: int, _chunk: bytes) -> None:
                    store.command(f"INSERT INTO {db}.gc_events SELECT * FROM {db}.bench_parsed "
                                  f"LIMIT {args.chunk_lines} OFFSET {k * args.chunk_lines} SETTINGS max_threads = 1")
            else:
                def step(_k: int, chunk: bytes) -> None:
                    store.insert_select_lines(statements[name], chunk, parameters=params)
            per_chunk: list[float] = []
            for k, chunk in enumerate(chunks):
                before = _cpu()
                step(k, chunk)
                per_chunk.append(_cpu() - before)
            per_m = sum(per_chunk) / args.lines * 1e6
            if not args.null and (name in ("product", "write") or name not in BASE_ROWS):
                stored = store.scalar(f"SELECT count() FROM {db}.gc_events")
                if stored != args.lines:
                    raise RuntimeError(f"{name}: {stored} rows stored for {args.lines} lines")
            fixed: dict[int, float] = {}
            if name != "write":
                for n, data in small.items():
                    runs = []
                    for _ in range(args.fixed_runs):
                        before = _cpu()
                        step(0, data)
                        runs.append((_cpu() - before) * 1000)
                    fixed[n] = statistics.median(runs)
            return per_m, fixed, per_chunk

        results: dict[str, list[tuple[float, dict[int, float], list[float]]]] = {name: [] for name in wanted}
        for _ in range(args.repeat):
            for name in wanted:
                results[name].append(one_round(name))
        print(f"{args.lines:,} gc lines, {args.chunk_lines:,} per statement, best of {args.repeat} rounds; "
              f"fixed cost: median of {args.fixed_runs} statements")
        print("| row | CPU s per M lines (best) | all rounds | sum of per-statement minima | ms per 3-line statement | "
              "ms per 1,000-line statement |")
        print("|---|---:|---|---:|---:|---:|")
        for name, runs in results.items():
            per_m = [r[0] for r in runs]
            fixed3 = min((r[1][3] for r in runs if r[1]), default=float("nan"))
            fixed1000 = min((r[1][1000] for r in runs if r[1]), default=float("nan"))
            # Each statement's least CPU over the rounds, summed: on a shared machine a whole round is seldom
            # undisturbed, a single statement more often, so this moves less with the load than the best round.
            minima = sum(min(r[2][k] for r in runs) for k in range(len(chunks))) / args.lines * 1e6
            print(f"| {name} | {min(per_m):.2f} | {' / '.join(f'{x:.2f}' for x in per_m)} | {minima:.2f} | "
                  f"{fixed3:.1f} | {fixed1000:.1f} |")
        print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
