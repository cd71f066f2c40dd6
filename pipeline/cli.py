"""The `fleetwatch` command: run, migrate, ingest, sql, jobs, triage, backtest.

Only argument parsing and exit codes live here; each command calls into the module that does the work.
Flags override `FLEETWATCH_*` variables, which override the TOML file given by `--config`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence

from pipeline import __version__
from pipeline.config import Settings, load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (also FLEETWATCH_CONFIG)")
    parser.add_argument("--clickhouse-dsn", help="chdb:///path or http(s)://user:pass@host:8123")
    parser.add_argument("--database", help="ClickHouse database (default fleetwatch)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetwatch",
        description="GC storms, goroutine leaks and lost context cancellation across a Go fleet.",
    )
    parser.add_argument("--version", action="version", version=f"fleetwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline: receivers, Kafka workers, jobs, query endpoint")
    _common(run)
    run.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers; enables the Kafka source")
    run.add_argument("--otlp-grpc", help="OTLP/gRPC listen address (empty: off)")
    run.add_argument("--otlp-http", help="OTLP/HTTP listen address (empty: off)")
    run.add_argument("--query-http", help="embedded query endpoint address (empty: off)")
    run.add_argument(
        "--until-caught-up", action="store_true",
        help="consume Kafka up to every partition's high watermark, flush, commit and exit",
    )
    run.add_argument("--no-jobs", action="store_true", help="do not run the detection scheduler")

    mig = sub.add_parser("migrate", help="create or upgrade the tables")
    _common(mig)

    ingest = sub.add_parser("ingest", help="read runtime output from files or stdin into the store")
    ingest_sub = ingest.add_subparsers(dest="kind", required=True)
    gct = ingest_sub.add_parser("gctrace", help="GODEBUG=gctrace=1 stderr (plain or gzip; - for stdin)")
    _common(gct)
    gct.add_argument("paths", nargs="+", metavar="PATH")
    gct.add_argument("--service", default=None, help="service name for these lines (default: unknown)")
    gct.add_argument("--instance", default="", help="instance name (default: the file name, or stdin)")
    gct.add_argument(
        "--follow", action="store_true",
        help="keep reading FILE as it grows and rotates (checkpointed in the store) until interrupted",
    )
    gct.add_argument(
        "--start-time",
        help="process start time, ISO 8601; each cycle's ts is start + @seconds. "
        "Without it, see docs/schema.md ('Timestamps')",
    )
    gct.add_argument(
        "--jobs", type=int, default=None, metavar="N",
        help="inputs ingested at the same time, each on its own engine connection "
        "(default: the cores this process may use, at most 16; 1: in turn)",
    )

    pp = ingest_sub.add_parser("pprof", help="Go profiles: pprof protobuf (gzip or not), goroutine debug=1/debug=2 "
                               "dumps, SIGQUIT or panic tracebacks")
    _common(pp)
    pp.add_argument("paths", nargs="+", metavar="PATH")
    pp.add_argument("--service", default="unknown", help="service name for these profiles")
    pp.add_argument("--instance", default="", help="instance name (default: the file name)")
    pp.add_argument("--time", help="when the profiles were taken, ISO 8601 (default: the profile's own time, "
                    "else the file's modification time)")
    pp.add_argument("--type", choices=["goroutine", "goroutineleak", "allocs", "heap"],
                    help="profile type when the content does not say (default: sniffed)")

    pprof_cmd = sub.add_parser("pprof", help="stored profiles")
    pprof_sub = pprof_cmd.add_subparsers(dest="pprof_command", required=True)
    export = pprof_sub.add_parser("export", help="write the raw profile nearest before a time to a file "
                                  "(for go tool pprof)")
    _common(export)
    export.add_argument("--service", required=True)
    export.add_argument("--instance", required=True)
    export.add_argument("--at", help="ISO 8601 time; the latest snapshot at or before it (default: now)")
    export.add_argument("--type", default="goroutine", choices=["goroutine", "goroutineleak", "allocs", "heap"],
                        help="profile type (default goroutine)")
    export.add_argument("-o", "--output", required=True, help="file to write (- for stdout)")
    export.add_argument("--query-http", help="a running pipeline's query endpoint, used when it holds the store")

    sql = sub.add_parser("sql", help="run a query and print the result")
    _common(sql)
    sql.add_argument("query", help="the SQL to run")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument("--query-http", help="a running pipeline's query endpoint, used when it holds the store")

    jobs = sub.add_parser("jobs", help="detection jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    once = jobs_sub.add_parser("run-once", help="run detection jobs now over a window and exit")
    _common(once)
    once.add_argument("--job", action="append", help="job name (repeatable; default: all)")
    once.add_argument("--since", help="window start (ISO 8601 or a duration like 1h)")
    once.add_argument("--until", help="window end (ISO 8601; default: now)")
    jobs_sub.add_parser("list", help="list the jobs").set_defaults(_no_common=True)

    tri = sub.add_parser("triage", help="report GC storms, goroutine leaks and cancellation gaps")
    _common(tri)
    tri.add_argument("--service", help="one service (default: the whole fleet)")
    tri.add_argument("--since", default="15m", help="how far back to look (default 15m)")
    tri.add_argument("--format", choices=["text", "json"], default="text")
    tri.add_argument("--query-http", help="a running pipeline's query endpoint, used when it holds the store")

    bt = sub.add_parser("backtest", help="replay labelled scenarios through the detections and score them",
                        description="fleetwatch backtest [SCENARIO...]: the built-in library, library names, or "
                                    "scenario directories. fleetwatch backtest export --since --service --out: "
                                    "write a time range of the store as a scenario to label.")
    _common(bt)
    bt.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help="library name, 'library' (all of it), or directory ('export' first: export)")
    bt.add_argument("--format", choices=["table", "json"], default="table")
    bt.add_argument("--step", type=int, default=1800, help="replay clock step in seconds (leak-trend cadence)")
    bt.add_argument("--since", help="export: range start (ISO 8601 or a duration like 6h)")
    bt.add_argument("--until", help="export: range end (default: now)")
    bt.add_argument("--service", action="append", help="export: service to include (repeatable)")
    bt.add_argument("--out", help="export: scenario directory to write")
    bt.add_argument("--name", help="export: scenario name (default: the directory name)")
    bt.add_argument("--query-http", help="export: a running pipeline's query endpoint, used when it holds the store")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        "clickhouse_dsn": getattr(args, "clickhouse_dsn", None),
        "database": getattr(args, "database", None),
        "log_level": getattr(args, "log_level", None),
        "kafka_bootstrap": getattr(args, "kafka_bootstrap", None),
        "otlp_grpc": getattr(args, "otlp_grpc", None),
        "otlp_http": getattr(args, "otlp_http", None),
        "query_http": getattr(args, "query_http", None),
    }
    if getattr(args, "no_jobs", False):
        overrides["jobs_enabled"] = False
    return load_settings(getattr(args, "config", None), **overrides)


# Python's cyclic collector runs a generation-0 pass every 700 new container objects. Normalizing a million
# lines creates tens of millions of short-lived tuples whose passes found nothing to free yet cost about a
# quarter of the normalizer's CPU (docs/benchmarks.md). Rarer passes keep cycle collection, at a fraction of
# the cost; reference counting still frees everything acyclic at once.
GC_THRESHOLDS = (50_000, 20, 100)


def main(argv: Sequence[str] | None = None) -> int:
    gc.set_threshold(*GC_THRESHOLDS)
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except Exception as exc:  # pydantic ValidationError, missing config file
        print(f"fleetwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from pipeline.store.client import StoreError, StoreUnavailable
        from pipeline.store.migrate import MigrationError

        if isinstance(exc, (StoreError, StoreUnavailable, MigrationError, FileNotFoundError, ValueError)):
            print(f"fleetwatch: {exc}", file=sys.stderr)
            return 1
        raise


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from pipeline.app import run

        return run(settings, until_caught_up=args.until_caught_up)
    if args.command == "migrate":
        from pipeline.store.client import Store
        from pipeline.store.migrate import context_from_settings, migrate

        store = Store.from_settings(settings)
        applied = migrate(store, settings.sql_dir, context_from_settings(settings))
        print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.path.name}" for m in applied))
        return 0
    if args.command == "ingest" and args.kind == "pprof":
        from pipeline.sources.pprof_files import ingest_pprof_command

        return ingest_pprof_command(settings, args)
    if args.command == "pprof":
        from pipeline.report.export import export_command

        return export_command(settings, args)
    if args.command == "ingest":
        from pipeline.sources.files import ingest_command

        return ingest_command(settings, args)
    if args.command == "sql":
        from pipeline.store.query import sql_command

        return sql_command(settings, args)
    if args.command == "jobs":
        from pipeline.jobs.scheduler import jobs_command

        return jobs_command(settings, args)
    if args.command == "triage":
        from pipeline.report.triage import triage_command

        return triage_command(settings, args)
    if args.command == "backtest":
        from pipeline.backtest.command import backtest_command

        return backtest_command(settings, args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
