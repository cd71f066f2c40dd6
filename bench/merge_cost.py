"""What gc_events' write and background merges cost per stored row, per table variant: `python -m bench.merge_cost`.

Why: the file row's CPU per million lines is higher for 10 M lines than for 1 M, and the thread that grows is the
engine's merges (`MergeMutate`): a hundred 100,000-row parts are merged over more levels than ten. Every ingest
path ends in the same typed insert into gc_events and the same merges, so a cheaper table layout (codecs, merge
settings) helps them all, if the readers do not pay for it. This measures only that, with no parse: 100,000 real
gc lines are parsed once by the product's chunk statement, kept in a Memory table, then inserted `--parts` times
(one instance per insert, as one file per instance does) into a fresh copy of gc_events per variant.

A variant is `--variant NAME[:RULE]=SETTINGS`: RULE (bench/codec_variants.py: lz4, lz4_plain, zstd_plain, zstd, none)
rewrites the codecs of the copy's columns, SETTINGS are MergeTree settings (`merge_selector_base = 10`); either may
be empty. Per variant it reports the process CPU during the inserts and how much of it the merge threads took
(read from /proc), the merges until none has run for a second, insert + merge together, the bytes on disk per row
once the merges settle (`system.parts.data_compressed_bytes`), and two read figures, the median of
`--read-repeats` runs each: the GC-storm job itself (sql/jobs/gc_storms.sql, the copy swapped in as gc_events)
over the data's last `--read-windows` windows in one statement, as a catch-up runs it, and a scan of the job's
aggregates over every row (bench/sql/merge_cost_scan.sql). `--rounds` repeats the whole list, alternating its
order, so a shared machine's load falls on every variant alike. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.cli_profile import thread_cpu
from bench.codec_variants import RULES, modify_clauses
from bench.data import instance_lines, span_seconds
from bench.measure import Stopwatch
from bench.scratch import scratch_store
from pipeline.config import DetectSettings
from pipeline.jobs.runner import discover_jobs, execute_job, select_jobs
from pipeline.jobs.windows import Window, align_down
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
BENCH_SQL = Path(__file__).resolve().parent / "sql"
PART_ROWS = 100_000
_SCAN_SQL = (BENCH_SQL / "merge_cost_scan.sql").read_text(encoding="utf-8")
_PARTS_SQL = (BENCH_SQL / "merge_cost_parts.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Variant:
    name: str
    rule: str       # a codec rule of bench/codec_variants.py, '' for the migrated codecs
    settings: str   # MergeTree settings, '' for the migrated ones

    @classmethod
    def parse(cls, spec: str) -> Variant:
        head, _, settings = spec.partition("=")
        name, _, rule = head.partition(":")
        if rule and rule not in RULES:
            raise SystemExit(f"--variant {spec!r}: unknown codec rule {rule!r}; known: {', '.join(RULES)}")
        if not name.isidentifier():
            raise SystemExit(f"--variant {spec!r}: the name must be an identifier")
        return cls(name, rule, settings.strip())

    def describe(self) -> str:
        return "; ".join(x for x in (f"codecs {self.rule}" if self.rule else "", self.settings) if x) or "(as migrated)"


def merge_cpu() -> float:
    return sum(cpu for name, cpu in thread_cpu().values() if name.startswith("MergeMutate"))


def wait_merges(store: Store, table: str) -> None:
    """Until no merge of `table` has run for a second (ten looks 0.1 s apart)."""
    quiet = 0
    while quiet < 10:
        running = store.scalar(f"SELECT count() FROM system.merges WHERE database = '{store.database}' "
                               f"AND table = '{table}'")
        quiet = 0 if running else quiet + 1
        time.sleep(0.1)


def job_read_ms(store: Store, table: str, windows: int, repeats: int, ctx: RenderContext) -> float:
    """Median process CPU (ms) of the GC-storm job over the last `windows` windows of `table`'s rows, with the
    table swapped in as gc_events for the runs (and swapped back after)."""
    db = store.database
    detect = DetectSettings()
    step = timedelta(seconds=detect.window_seconds)
    last = store.scalar(f"SELECT max(ts) FROM {db}.{table}")
    end = align_down(last.replace(tzinfo=UTC) if last.tzinfo is None else last, detect.window_seconds) + step
    each = [Window(end - (i + 1) * step, end - i * step) for i in reversed(range(windows))]
    job = select_jobs(discover_jobs(SQL_DIR), ["gc_storms"])[0]
    cpu: list[float] = []
    store.command(f"EXCHANGE TABLES {db}.{table} AND {db}.gc_events")
    try:
        for _ in range(repeats):
            with Stopwatch() as sw:
                result = execute_job(store, job, Window(each[0].start, each[-1].end), detect, ctx,
                                     count_written=False, windows=each)
            if result.status != "ok":
                raise RuntimeError(f"gc_storms over {table}: {result.error}")
            cpu.append(sw.cpu)
    finally:
        store.command(f"EXCHANGE TABLES {db}.{table} AND {db}.gc_events")
    return statistics.median(cpu) * 1000


def scan_read_ms(store: Store, table: str, repeats: int) -> float:
    cpu: list[float] = []
    for _ in range(repeats):
        with Stopwatch() as sw:
            store.dicts(_SCAN_SQL, {"db": store.database, "table": table})
        cpu.append(sw.cpu)
    return statistics.median(cpu) * 1000


def run_variant(store: Store, variant: Variant, parts: int, args: argparse.Namespace, ctx: RenderContext) -> str:
    db = store.database
    table = f"merge_cost_{variant.name}"
    store.command(f"CREATE TABLE {db}.{table} AS {db}.gc_events")
    if variant.rule:
        columns = store.dicts(f"SELECT name, type, compression_codec FROM system.columns "
                              f"WHERE database = '{db}' AND table = 'gc_events' ORDER BY position")
        clauses = modify_clauses(variant.rule, columns)
        if clauses:
            store.command(f"ALTER TABLE {db}.{table} " + ", ".join(clauses))
    if variant.settings:
        store.command(f"ALTER TABLE {db}.{table} MODIFY SETTING {variant.settings}")
    million = parts * PART_ROWS / 1e6
    before = merge_cpu()
    with Stopwatch() as sw:
        for k in range(parts):
            store.command(f"INSERT INTO {db}.{table} SELECT * REPLACE ('inst-{k:04d}' AS instance) "
                          f"FROM {db}.merge_cost_rows")
    during = merge_cpu() - before
    wait_merges(store, table)
    settled = merge_cpu() - before
    found = store.dicts(_PARTS_SQL, {"database": db, "table": table})[0]
    job_ms = job_read_ms(store, table, args.read_windows, args.read_repeats, ctx)
    scan_ms = scan_read_ms(store, table, args.read_repeats)
    store.command(f"DROP TABLE {db}.{table} SYNC")
    total = sw.cpu + settled - during
    return (f"| {variant.name} | {variant.describe()} | {(sw.cpu - during) / million:.2f} | {during / million:.2f} | "
            f"{settled / million:.2f} | **{total / million:.2f}** | {found['merged_rows'] / 1e6 / million:.2f} | "
            f"{settled / max(found['merged_rows'], 1) * 1e6:.2f} | "
            f"{found['compressed'] / found['total_rows']:.1f} ({found['uncompressed'] / found['total_rows']:.0f}) | "
            f"{found['parts']} ({found['compact']} compact) | "
            f"{found['largest_rows']:,} | {job_ms:.0f} | {scan_ms:.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=100, help="inserts of 100,000 rows each")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME[:CODEC_RULE]=MergeTree settings (repeatable); 'as_is' is always first")
    parser.add_argument("--rounds", type=int, default=1, help="run every variant this many times, interleaved")
    parser.add_argument("--read-windows", type=int, default=10, help="windows of the GC-storm job's read")
    parser.add_argument("--read-repeats", type=int, default=3, help="runs of each read figure (median)")
    args = parser.parse_args(argv)
    variants = [Variant("as_is", "", ""), *(Variant.parse(v) for v in args.variant)]
    with scratch_store("merge-cost-") as scratch:
        store, ctx = scratch.store, scratch.ctx
        db = store.database
        start_us = int(datetime.now(UTC).timestamp() - span_seconds(PART_ROWS) - 600) * 1_000_000
        store.insert_select_lines(load_statement(SQL_DIR, "fastpath/gctrace_chunk.sql", ctx),
                                  ("\n".join(instance_lines(PART_ROWS)) + "\n").encode(),
                                  parameters={"service": "bench", "instance": "x", "source": "file", "received_ms": 0,
                                              "start_us": start_us, "incarnation": 1, "last_num": -1,
                                              "last_since_us": -1})
        store.command(f"CREATE TABLE {db}.merge_cost_rows ENGINE = Memory AS SELECT * FROM {db}.gc_events")
        store.command(f"TRUNCATE TABLE {db}.gc_events")
        print(f"{args.parts} inserts of {PART_ROWS:,} rows; CPU s per M rows; reads: CPU ms, median of "
              f"{args.read_repeats} (the job over {args.read_windows} windows, the scan over every row)")
        print("| variant | codecs; settings | inserts (process less merges) | merges during the inserts | "
              "merges, settled | insert + merges | rows rewritten per row | merges per M rewritten rows | "
              "bytes per row (uncompressed) | active parts | largest part, rows | "
              "read: gc_storms job, ms | read: scan, ms |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for round_ in range(args.rounds):
            for variant in (variants if round_ % 2 == 0 else variants[::-1]):
                print(run_variant(store, variant, args.parts, args, ctx), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
