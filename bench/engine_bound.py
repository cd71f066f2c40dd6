"""The engine's own bound for gctrace file ingest, in one process: `python -m bench.engine_bound`.

Why: the file path's target (500k lines/s on two cores) is only reachable if the engine itself can parse and
store gc lines that fast. This script measures, on the same real gc lines (bench.data: every gc summary
line of tests/data/go-runtime, renumbered as a storm), chunk by chunk as the fast path sends them, with the
embedded engine and no Python per line:

* bare     -- the raw bytes into a one-String-column MergeTree (`raw_insert`, LineAsString): the floor
* noclock  -- one `INSERT INTO gc_events SELECT <parse> FROM input(...)` per chunk, ts = start + @T
              (bench/sql/engine_bound_noclock.sql): the work every gc line needs
* window   -- the same with the general stream clock in window functions ordered by line number, restarts
              included (bench/sql/engine_bound_window.sql)
* neighbor -- the product's statement with the restart check done by `neighbor` instead of an unordered
              window (bench/sql/engine_bound_neighbor.sql; a deprecated function, allowed by a setting)
* chunk    -- the product's statement (sql/fastpath/gctrace_chunk.sql): the parse, the refusal of an unclean
              chunk and the restart check (one unordered lag), ts = start + @T
* chunk_x2 -- the product's statement from two Python threads at once (two streams, half the chunks each,
              each thread on its own engine connection), as `fleetwatch ingest gctrace --jobs 2` runs files
* ingest   -- the product end to end: `files.ingest_stream` with the fast path over a file of the same lines

CPU is the process's user + system time (the engine's threads included), so a figure per million lines can
be compared on a busy machine; wall is reported too. Run it under py-spy for the engine's profile:
`py-spy record --native --format raw -o /tmp/engine.txt -- python -m bench.engine_bound --only chunk`.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.data import instance_lines, span_seconds
from bench.measure import Stopwatch, peak_rss_mb
from bench.scratch import scratch_store
from pipeline.sources import gctrace_fast
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, render, split_statements

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
BENCH_SQL = Path(__file__).resolve().parent / "sql"
VARIANTS = ("bare", "noclock", "window", "neighbor", "chunk", "chunk_x2", "ingest")


def chunks_of(lines: list[str], size: int) -> list[bytes]:
    return [("\n".join(lines[i:i + size]) + "\n").encode() for i in range(0, len(lines), size)]


def run(variant: str, chunks: list[bytes], lines: int, store: Store, ctx: RenderContext, path: Path) -> dict:
    start = datetime.now(UTC) - timedelta(seconds=span_seconds(lines) + 600)
    params = {"service": "bench", "instance": variant, "source": "file", "received_ms": 0,
              "start_us": int(start.timestamp()) * 1_000_000, "incarnation": 1, "last_num": -1,
              "last_since_us": -1, "last_end_us": int(start.timestamp()) * 1_000_000}
    step: Callable[[bytes], None]
    if variant == "bare":
        for statement in split_statements(render((BENCH_SQL / "raw_lines.sql").read_text(), ctx)):
            store.command(statement)

        def step(chunk: bytes) -> None:
            store.insert_raw("bench_raw_lines", chunk, fmt="LineAsString", column_names=["line"])
    elif variant == "ingest":
        from pipeline.sources.files import Input, ingest_stream

        path.write_bytes(b"".join(chunks))
        fast = gctrace_fast.GctraceFastPath(store, SQL_DIR, ctx)
        with Stopwatch() as sw:
            ingest_stream(store, Input(name=str(path), instance=variant), service="bench",
                          start_ns=int(start.timestamp()) * 10**9, fast=fast)
        return {"wall": sw.wall, "cpu": sw.cpu}
    elif variant == "chunk_x2":
        sql = load_statement(SQL_DIR, "fastpath/gctrace_chunk.sql", ctx)

        def half(k: int) -> None:
            for chunk in chunks[k::2]:
                store.insert_select_lines(sql, chunk, parameters={**params, "instance": f"{variant}-{k}"})

        threads = [threading.Thread(target=half, args=(k,)) for k in (0, 1)]
        with Stopwatch() as sw:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return {"wall": sw.wall, "cpu": sw.cpu}
    else:
        sql = (load_statement(SQL_DIR, "fastpath/gctrace_chunk.sql", ctx) if variant == "chunk"
               else render((BENCH_SQL / f"engine_bound_{variant}.sql").read_text(), ctx))

        def step(chunk: bytes) -> None:
            store.insert_select_lines(sql, chunk, parameters=params)
    with Stopwatch() as sw:
        for chunk in chunks:
            step(chunk)
    return {"wall": sw.wall, "cpu": sw.cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--chunk-lines", type=int, default=200_000)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    wanted = args.only.split(",") if args.only else list(VARIANTS)
    chunks = chunks_of(instance_lines(args.lines), args.chunk_lines)
    with scratch_store("engine-bound-") as scratch:
        store, ctx, tmp = scratch.store, scratch.ctx, scratch.dir
        print(f"{args.lines:,} gc lines, {args.chunk_lines:,} per statement, {sum(map(len, chunks)) / 1e6:.0f} MB")
        print("| variant | wall s | lines/s | CPU s | CPU s per M lines | cores (CPU / wall) |")
        print("|---|---:|---:|---:|---:|---:|")
        for _ in range(args.repeat):
            for variant in wanted:
                store.command(f"TRUNCATE TABLE {store.database}.gc_events")
                got = run(variant, chunks, args.lines, store, ctx, tmp / "input.log")
                table = "bench_raw_lines" if variant == "bare" else "gc_events"
                rows = store.scalar(f"SELECT count() FROM {store.database}.{table}")
                if variant == "bare":
                    store.command(f"DROP TABLE {store.database}.bench_raw_lines")
                if rows != args.lines:
                    raise RuntimeError(f"{variant}: {rows} rows stored for {args.lines} lines")
                print(f"| {variant} | {got['wall']:.2f} | {args.lines / got['wall']:,.0f} | {got['cpu']:.2f} | "
                      f"{got['cpu'] / args.lines * 1e6:.2f} | {got['cpu'] / got['wall']:.2f} |", flush=True)
        print(f"peak RSS {peak_rss_mb():.0f} MB; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
