"""One benchmark path in a process of its own: `python -m bench.worker SCENARIO JSON-ARGS`.

The runner starts one worker per path because the embedded store allows one store path per process. A
worker opens its own store, migrates it (not timed), runs the path, counts the rows it stored and prints
a `measure.Result`. Scenarios:

* file   -- `fleetwatch ingest gctrace` (pipeline.cli.main, the real command) over instance files
* bare   -- the limit: the same raw lines inserted as one String column, nothing parsed
* naive  -- the approach users write first: a pydantic model per line and one row-wise insert per line
* engine_parse -- a measured idea, not the product: raw lines into a Null table, a materialized view
            parses them (bench/sql/parse_in_engine.sql)
* kafka  -- the Kafka source run until caught up (what `fleetwatch run --until-caught-up` does)
* tail   -- the file source of `fleetwatch run` following growing CRI pod logs (a writer thread appends)
* otlp   -- an OTLP receiver (http or grpc); the runner drives it over stdin: `mark`, then
            `stop <units> <client wall seconds>` once its client has had every request acknowledged; with
            `bare`, the transport's bound: requests decoded and answered, nothing mapped or stored
* file_store_bare -- the engine's bound for file ingest: the file command's own statements on its own chunks, replayed
            with its concurrency and nothing of Fleetwatch's Python between them (bench/file_bare.py)
* otlp_store_bare -- the store's bound for OTLP: the receiver's rows of the same requests, made before the clock,
            written in writes of the receiver's size, nothing else

With BENCH_PROFILE=<path>, the timed section runs under pyinstrument and its text report goes to <path>.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench import file_bare, kafka_bare
from bench.measure import Result, Stopwatch, peak_rss_mb
from pipeline.config import KafkaSettings, Settings, load_settings
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate, render, split_statements

BENCH_SQL = Path(__file__).resolve().parent / "sql"
SERVICE = "bench"
BATCH_LINES = 50_000


def _settings(dsn: str, **extra: Any) -> Settings:
    return load_settings(clickhouse_dsn=dsn, jobs_enabled=False, **extra)


def _open(settings: Settings) -> Store:
    store = Store.from_settings(settings)
    migrate(store, settings.sql_dir, context_from_settings(settings))
    return store


def _count(store: Store, table: str) -> int:
    return int(store.scalar(f"SELECT count() FROM {store.database}.{table}"))


@contextmanager
def _profiled(name: str) -> Iterator[None]:
    target = os.environ.get("BENCH_PROFILE")
    if not target:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.002)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(target).write_text(profiler.output_text(unicode=False, color=False, show_all=False, timeline=False))
        print(f"{name}: profile written to {target}", file=sys.stderr)


def _read_lines(paths: list[str]) -> Iterator[list[str]]:
    """Lines of every file, a megabyte at a time (a final unterminated line included)."""
    for path in paths:
        with open(path, "rb") as f:
            pending = b""
            while chunk := f.read(1 << 20):
                chunk = pending + chunk
                cut = chunk.rfind(b"\n") + 1
                pending = chunk[cut:]
                if cut:
                    yield chunk[:cut - 1].decode().split("\n")
            if pending:
                yield [pending.decode()]


# -- file ingest -----------------------------------------------------------------------------------------
def file_scenario(args: dict) -> Result:
    from pipeline import cli
    from pipeline.sources import files  # noqa: F401 - imported before the clock starts, like a running CLI

    # The store stays open across the command, as the bare reference's does: the embedded engine starts once per
    # process (about 0.3 s of CPU), before the clock, for every row; the command's own start is measured apart
    # (docs/benchmarks.md, "The CLI's start").
    store = _open(_settings(args["dsn"]))
    argv = ["ingest", "gctrace", "--clickhouse-dsn", args["dsn"], "--service", SERVICE,
            "--start-time", args["start_time"], "--log-level", "WARNING", *args["paths"]]
    # The command's CPU by phase (start-up, ingest, close; bench/file_bare.py) and, with BENCH_THREADS=1, by thread.
    from contextlib import nullcontext

    from bench.cli_profile import Sampler
    from bench.file_bare import CommandPhases

    phases = CommandPhases()
    sampler = Sampler() if os.environ.get("BENCH_THREADS") else None
    with _profiled("file"), sampler or nullcontext(), Stopwatch() as sw, phases.watching():
        code = cli.main(argv)
    if code != 0:
        raise RuntimeError(f"fleetwatch ingest exited with {code}")
    threads = {name: round(cpu / args["lines"] * 1e6, 2) for name, cpu in sampler.by_kind().items()} \
        if sampler is not None else {}
    # The merges the command's parts still had to go through when it returned (reported apart, as for
    # otlp_store_bare): a short input leaves more of them outside the window than a long one.
    from bench.parts import parts_written  # what the command's inserts and merges wrote, per table

    parts = parts_written(store)
    with Stopwatch() as settle:
        _merges_settled(store)
    return Result("file", args["lines"], _count(store, "gc_events"), sw.wall, sw.cpu, peak_rss_mb(),
                  extra={"phases": phases.split(), "threads_cpu_s_per_m": threads,
                         "merge_settle_cpu_s": settle.cpu, "merge_settle_wall_s": settle.wall,
                         "parts": parts})


def file_python_scenario(args: dict) -> Result:
    """Reference: the same files through the Python normalizer only (no engine fast path), as
    `fleetwatch ingest` did before it; same store, same batches, same sink."""
    from pipeline.sources import files
    from pipeline.sources.files import Input, ingest_stream, parse_start_time

    settings = _settings(args["dsn"])
    store = _open(settings)
    start_ns = parse_start_time(args["start_time"])
    with _profiled("file_python"), Stopwatch() as sw:
        for path in args["paths"]:
            ingest_stream(store, Input(name=path, instance=Path(path).name), service=SERVICE, start_ns=start_ns,
                          batch_lines=files.BATCH_LINES, fast=None)
    return Result("file_python", args["lines"], _count(store, "gc_events"), sw.wall, sw.cpu, peak_rss_mb())


# -- references ------------------------------------------------------------------------------------------
def bare_scenario(args: dict) -> Result:
    settings = _settings(args["dsn"])
    store = _open(settings)
    ddl = render((BENCH_SQL / "raw_lines.sql").read_text(), context_from_settings(settings))
    for statement in split_statements(ddl):
        store.command(statement)
    with Stopwatch() as sw:
        batch: list[str] = []
        for lines in _read_lines(args["paths"]):
            batch.extend(lines)
            if len(batch) >= BATCH_LINES:
                store.insert_columns("bench_raw_lines", {"line": batch})
                batch = []
        store.insert_columns("bench_raw_lines", {"line": batch})
    return Result("bare", args["lines"], _count(store, "bench_raw_lines"), sw.wall, sw.cpu, peak_rss_mb())


def engine_parse_scenario(args: dict) -> Result:
    """Prototype: raw lines in, the engine parses (bench/sql/parse_in_engine.sql). Same files as `file`."""
    settings = _settings(args["dsn"])
    store = _open(settings)
    ddl = render((BENCH_SQL / "parse_in_engine.sql").read_text(), context_from_settings(settings))
    for statement in split_statements(ddl):
        store.command(statement)
    start = datetime.fromisoformat(args["start_time"])
    received = datetime.now(UTC)
    with _profiled("engine_parse"), Stopwatch() as sw:
        for path in args["paths"]:
            instance = Path(path).name
            batch: list[str] = []
            for lines in _read_lines([path]):
                batch.extend(lines)
                if len(batch) >= BATCH_LINES:
                    _send_raw(store, instance, start, received, batch)
                    batch = []
            _send_raw(store, instance, start, received, batch)
    return Result("engine_parse", args["lines"], _count(store, "gc_events"), sw.wall, sw.cpu, peak_rss_mb())


def _send_raw(store: Store, instance: str, start: datetime, received: datetime, lines: list[str]) -> None:
    n = len(lines)
    store.insert_columns("bench_gc_lines", {"service": [SERVICE] * n, "instance": [instance] * n,
                                            "process_start": [start] * n, "received_at": [received] * n,
                                            "line": lines})


_NAIVE_GC = re.compile(
    r"gc (?P<gc_num>\d+) @(?P<since_start_s>[\d.]+)s (?P<gc_cpu_pct>\d+)%: "
    r"(?P<stw_sweep_term_ms>[\d.]+)\+(?P<mark_ms>[\d.]+)\+(?P<stw_mark_term_ms>[\d.]+) ms clock, "
    r"(?P<cpu_sweep_term_ms>[\d.]+)\+(?P<cpu_assist_ms>[\d.]+)/(?P<cpu_background_ms>[\d.]+)/"
    r"(?P<cpu_idle_ms>[\d.]+)\+(?P<cpu_mark_term_ms>[\d.]+) ms cpu, "
    r"(?P<heap_start_mb>\d+)->(?P<heap_end_mb>\d+)->(?P<heap_live_mb>\d+) MB, (?P<heap_goal_mb>\d+) MB goal, "
    r"(?:(?P<stacks_mb>\d+) MB stacks, (?P<globals_mb>\d+) MB globals, )?(?P<procs>\d+) P"
)


class NaiveGcEvent(BaseModel):
    """What a first implementation looks like: one validated object per line."""

    service: str
    instance: str
    ts: datetime
    gc_num: int
    since_start_s: float
    gc_cpu_pct: int
    stw_sweep_term_ms: float
    mark_ms: float
    stw_mark_term_ms: float
    cpu_sweep_term_ms: float
    cpu_assist_ms: float
    cpu_background_ms: float
    cpu_idle_ms: float
    cpu_mark_term_ms: float
    heap_start_mb: int
    heap_end_mb: int
    heap_live_mb: int
    heap_goal_mb: int
    stacks_mb: int | None
    globals_mb: int | None
    procs: int
    process_start: datetime
    source: str = "file"
    received_at: datetime


def naive_scenario(args: dict) -> Result:
    store = _open(_settings(args["dsn"]))
    client = store.client()
    table = f"{store.database}.gc_events"
    start = datetime.fromisoformat(args["start_time"])
    sample: list[tuple[str, str]] = []
    for path in args["paths"]:
        for lines in _read_lines([path]):
            sample.extend((Path(path).name, line) for line in lines)
            if len(sample) >= args["sample"]:
                break
        if len(sample) >= args["sample"]:
            break
    sample = sample[:args["sample"]]
    names = list(NaiveGcEvent.model_fields)
    with Stopwatch() as sw:
        for instance, line in sample:
            fields = _NAIVE_GC.search(line).groupdict()  # type: ignore[union-attr]
            ts = start.timestamp() + float(fields["since_start_s"])
            event = NaiveGcEvent(service=SERVICE, instance=instance, ts=datetime.fromtimestamp(ts, UTC),
                                 process_start=start, received_at=datetime.now(UTC), **fields)
            row = event.model_dump()
            client.insert(table, [[row[n] for n in names]], column_names=names)
    return Result("naive", len(sample), _count(store, "gc_events"), sw.wall, sw.cpu, peak_rss_mb())


# -- Kafka -----------------------------------------------------------------------------------------------
def kafka_scenario(args: dict) -> Result:
    """The Kafka source until caught up. Besides end to end: the group join (start to the worker's first
    assignment, read from the worker's state) and the rate from that assignment to caught up, what a running
    worker sees; and a steady rate, lines after the first batch over the time after the first batch was stored."""
    from pipeline.app import build_context
    from pipeline.sources import kafka

    kafka_settings = KafkaSettings(
        bootstrap=args["bootstrap"], group_id=args["group"], topic_gctrace=args["topic"],
        topic_cancel_events=f"{args['topic']}-none-c", topic_otlp_logs=f"{args['topic']}-none-l",
        topic_otlp_spans=f"{args['topic']}-none-s", topic_otlp_metrics=f"{args['topic']}-none-m",
        # Tansu holds a JoinGroup in 1 s steps until half the group's session timeout has passed (its group
        # coordinator): 2,000 ms is the largest timeout with one step (3,000 held it 2 s). A bench setting only
        # (docs/benchmarks.md, "Kafka one line per message: the join apart, the records in bulk").
        session_timeout_ms=2000, heartbeat_interval_ms=500, fetch_max_wait_ms=50, topic_refresh_seconds=1.0,
        **args.get("kafka", {}),
    )
    settings = _settings(args["dsn"], kafka=kafka_settings)
    ctx = build_context(settings, until_caught_up=True)
    first: dict[str, float] = {}
    write = ctx.sink.write

    def timed_write(rows: Any, **kw: Any) -> dict[str, int]:
        counts = write(rows, **kw)
        if "t" not in first:
            first["t"] = time.perf_counter()
            first["rows"] = sum(counts.values())
        return counts

    ctx.sink.write = timed_write  # type: ignore[method-assign]
    write_select = ctx.sink.write_select

    def timed_write_select(table: str, sql: str, **kw: Any) -> int:  # the gctrace engine path's gc rows
        n = write_select(table, sql, **kw)
        first["last"] = time.perf_counter()
        if "t" not in first:
            first["t"] = time.perf_counter()
            first["rows"] = n
        return n

    ctx.sink.write_select = timed_write_select  # type: ignore[method-assign]
    from contextlib import nullcontext

    from bench.cli_profile import Sampler
    from bench.kafka_bare import BrokerClock

    # BENCH_THREADS=1: CPU by thread name (the engine's pools, librdkafka's threads, Python's), as bench.cli_profile.
    sampler = Sampler() if os.environ.get("BENCH_THREADS") else None
    clock = time.perf_counter() - time.monotonic()  # the assignment is stamped with time.monotonic()
    with _profiled("kafka"), BrokerClock(args.get("broker_pid")) as broker, sampler or nullcontext(), \
            Stopwatch() as sw:
        component = kafka.start(ctx)
        assert component is not None
        if not ctx.stop_event.wait(args.get("timeout", 600)):
            raise RuntimeError("the Kafka source did not catch up in time")
        component.stop(30)
    # The Python threads by name: the consumer's (fleetwatch-kafka) apart from its write threads.
    threads = {name: round(cpu / args["lines"] * 1e6, 2) for name, cpu in sampler.by_kind(split_python=True).items()} \
        if sampler is not None else {}
    end = sw.wall0 + sw.wall
    rows = _count(ctx.store, "gc_events")
    steady = (rows - first.get("rows", 0)) / (end - first["t"]) if "t" in first and end > first["t"] else 0.0
    from bench.parts import parts_written  # what the run's inserts and merges wrote, per table

    parts = parts_written(ctx.store)
    ctx.writer.stop()
    return Result("kafka", args["lines"], rows, sw.wall, sw.cpu, peak_rss_mb(),
                  extra={"steady_rate": steady, "first_write_s": first.get("t", end) - sw.wall0,
                         "last_write_s": first.get("last", end) - sw.wall0,
                         "broker_cpu_s": broker.cpu, "threads_cpu_s_per_m": threads, "parts": parts,
                         **_from_assignment(getattr(component.worker, "first_assigned_at", None), clock, sw, rows)})


def _from_assignment(assigned_at: float | None, clock: float, sw: Stopwatch, rows: int) -> dict[str, float]:
    """A running worker's rate: the group join (start to the worker's first assignment, the consumer's own state)
    apart, and rows over the time from that assignment to caught up. `clock`: perf_counter - monotonic."""
    if assigned_at is None:
        return {}
    join = assigned_at + clock - sw.wall0
    after = sw.wall - join
    return {"join_s": join, "assigned_rate": rows / after if after > 0 else 0.0}


# -- OTLP receivers --------------------------------------------------------------------------------------
def otlp_scenario(args: dict) -> Result:
    from pipeline.app import build_context
    from pipeline.serve import otlp as otlp_http
    from pipeline.serve import otlp_grpc

    transport = args["transport"]
    address = f"127.0.0.1:{args['port']}"
    settings = _settings(args["dsn"], otlp_grpc=address if transport == "grpc" else "",
                         otlp_http=address if transport == "http" else "")
    # The *_python rows: the reference, plain gc lines through the Python normalizer (otlp.gctrace_engine off).
    settings.otlp.gctrace_engine = bool(args.get("engine", True))
    ctx = build_context(settings)
    writes = _count_writes(ctx)
    if args.get("bare"):
        _answer_only(ctx)
    component = (otlp_grpc if transport == "grpc" else otlp_http).start(ctx)
    assert component is not None
    print("READY", flush=True)
    sw = Stopwatch()
    units, client_wall = 0, 0.0
    stack = None
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "mark":
            stack = _profiled(f"otlp_{transport}")
            stack.__enter__()
            threads0 = _thread_cpu()
            sw.__enter__()
            print("MARKED", flush=True)
        elif command == "stop":
            # Every request is answered; with the journal (pipeline/journal.py) its lines may still wait to be
            # stored. The row's time and CPU run until they are all in gc_events.
            with Stopwatch() as drain:
                journal = ctx.sink.journal
                if journal is not None and not journal.wait_stored(300):
                    raise RuntimeError("the journal did not store every line within 300 s")
            sw.__exit__()
            by_thread = _thread_cpu(threads0)
            if stack is not None:
                stack.__exit__(None, None, None)
            units, client_wall = int(rest[0]), float(rest[1])
            break
    journal = ctx.sink.journal
    segments = journal.stored_segments if journal is not None else 0
    component.stop(10)
    ctx.writer.stop()
    if journal is not None:
        journal.stop(30)
    # The transport's bound stores nothing: every record it answered counts as its row.
    rows = units if args.get("bare") else _count(ctx.store, "gc_events")
    sizes = sorted(writes)
    return Result(args.get("name", f"otlp_{transport}"), units, rows, client_wall + drain.wall, sw.cpu,
                  peak_rss_mb(),
                  extra={"server_wall_s": sw.wall, "answered_wall_s": client_wall, "stored_after_s": drain.wall,
                         "journal_segments": segments, "writes": len(sizes),
                         "median_write_rows": sizes[len(sizes) // 2] if sizes else 0, "thread_cpu_s": by_thread})


def _thread_cpu(since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds (user + system) of this process's threads, summed by thread name (/proc/self/task/*/stat),
    minus `since`: which threads the window's CPU went to (the writer, the event loop, the request workers, the
    engine's pools). Threads that exited are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    # Python's threads by their Python name without the pool number (the OS name is the process's); the engine's
    # by their OS name.
    python = {t.native_id: re.sub(r"[_-]?\d+$", "", t.name) for t in threading.enumerate()}
    names: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            name = python.get(int(task.name)) or (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        names[name] = names.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    if since is not None:
        names = {k: round(v - since.get(k, 0.0), 2) for k, v in names.items() if v - since.get(k, 0.0) > 0.005}
    return names


def _count_writes(ctx: Any) -> list[int]:
    """The rows of every write the shared writer makes (the size of writes the store bound must reproduce)."""
    sizes: list[int] = []
    write = ctx.sink.write

    def counted(rows: Any, **kw: Any) -> dict[str, int]:
        sizes.append(rows.total())
        return write(rows, **kw)

    # Both names: the writer passes a request's token only when its write function is the sink's.
    ctx.sink.write = counted
    ctx.writer.write_fn = counted
    return sizes


def _answer_only(ctx: Any) -> None:
    """`otlp_*_bare`: the same port, limits, body read, decompression, record count, decode and dedup token, but the
    request is answered with success at once: no mapping, no writer, no store. What is left is the transport's
    cost (server library, event loop or gRPC threads, protobuf decode) beside its clients."""
    from concurrent.futures import Future

    from pipeline.normalize.otlp_common import OtlpResult
    from pipeline.normalize.rows import Rows
    from pipeline.serve import otlp as otlp_http
    from pipeline.sources import otlp_export

    def decoded_only(_signal: str, request: Any, **_kw: Any) -> tuple[Rows, OtlpResult]:
        records = sum(len(scope.log_records) for resource in request.resource_logs for scope in resource.scope_logs)
        return Rows(), OtlpResult(accepted=records)

    def answered(_rows: Any, token: str | None = None) -> Future[dict[str, int]]:
        future: Future[dict[str, int]] = Future()
        future.set_result({})
        return future

    otlp_http.prepare = decoded_only  # type: ignore[assignment]
    otlp_export.prepare = decoded_only  # type: ignore[assignment]
    ctx.writer.submit = answered


def otlp_store_bare_scenario(args: dict) -> Result:
    """`otlp_store_bare`: the store's bound for the OTLP rows. The rows the receiver's mapping makes of the same
    requests (plain gc lines for the engine, one row of lines per resource), made before the clock starts, then
    merged and written with `Sink.write` in writes of `per_write` requests (the size the receiver's writer makes
    with 16 exporters waiting), one after another as the writer does. Nothing else is timed."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from bench import clients
    from pipeline.normalize.otlp import normalize_request
    from pipeline.normalize.rows import Rows
    from pipeline.serve.otlp import SOURCE
    from pipeline.sink import Sink

    settings = _settings(args["dsn"])
    store = _open(settings)
    sink = Sink(store)
    per_write = int(args["per_write"])
    received = datetime.now(UTC)
    writes: list[Rows] = []
    merged = Rows()
    for n, body in enumerate(clients.log_requests(100, args["records_per_request"], args["requests"]), 1):
        request = ExportLogsServiceRequest.FromString(body)
        normalize_request("logs", request, rows=merged, source=SOURCE, received_at=received, plain_gc=True)
        if n % per_write == 0:
            writes.append(merged)
            merged = Rows()
    if merged.total():
        writes.append(merged)
    units = args["requests"] * args["records_per_request"]
    threads0 = _thread_cpu()
    with _profiled("otlp_store_bare"), Stopwatch() as sw:
        for rows in writes:
            sink.write(rows)
    by_thread = _thread_cpu(threads0)
    # The background merges of those parts, which the receiver pays inside its window: CPU until the engine has
    # had no merge running for a second (reported apart; the rate above is the writes').
    with Stopwatch() as settle:
        _merges_settled(store)
    return Result("otlp_store_bare", units, _count(store, "gc_events"), sw.wall, sw.cpu, peak_rss_mb(),
                  extra={"writes": len(writes), "per_write": per_write, "thread_cpu_s": by_thread,
                         "merge_settle_cpu_s": settle.cpu, "merge_settle_wall_s": settle.wall})


def _merges_settled(store: Store, quiet_polls: int = 10, interval: float = 0.1, limit: float = 120.0) -> None:
    """Return once no merge of the database has run for `quiet_polls` polls in a row (or after `limit` s)."""
    deadline = time.monotonic() + limit
    quiet = 0
    while quiet < quiet_polls and time.monotonic() < deadline:
        running = int(store.scalar(f"SELECT count() FROM system.merges WHERE database = '{store.database}'"))
        quiet = 0 if running else quiet + 1
        time.sleep(interval)


# -- the file source: growing container log files -----------------------------------------------------
def tail_scenario(args: dict) -> Result:
    """The tailer of `fleetwatch run` following growing CRI pod logs: a writer thread appends every
    instance's lines in slices while the tailer polls; the clock stops when every gc row is stored."""
    from pipeline.config import FilesSettings
    from pipeline.sink import Sink
    from pipeline.sources.tail.checkpoints import CheckpointStore
    from pipeline.sources.tail.tailer import Tailer

    settings = _settings(args["dsn"])
    store = _open(settings)
    root = Path(args["dir"])
    per_file: list[list[tuple[Path, str]]] = []  # prepared before the clock starts
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    for i, path in enumerate(args["paths"]):
        target = root / "pods" / f"bench_inst-{i}_{i:08x}" / "app" / "0.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = Path(path).read_text(encoding="utf-8").split("\n")[:-1]
        per_file.append([
            (target, "".join(f"{stamp} stderr F {line}\n" for line in lines[first:first + args["slice_lines"]]))
            for first in range(0, len(lines), args["slice_lines"])
        ])
    # The files grow side by side, a slice at a time each.
    slices = [item for group in zip_longest(*per_file) for item in group if item is not None]
    files = FilesSettings(paths=[str(root / "pods" / "*" / "*" / "*.log")], poll_interval_seconds=0.05,
                          idle_flush_seconds=0.2)
    tailer = Tailer(Sink(store), CheckpointStore(store, settings.sql_dir, context_from_settings(settings), "bench"),
                    files)
    stop = threading.Event()

    def write_all() -> None:
        for target, text in slices:
            with target.open("a", encoding="utf-8") as out:
                out.write(text)

    with _profiled("tail"), Stopwatch() as sw:
        writer = threading.Thread(target=write_all, name="bench-writer")
        reader = threading.Thread(target=tailer.run, args=(stop,), name="bench-tailer")
        writer.start()
        reader.start()
        while _count(store, "gc_events") < args["lines"]:
            time.sleep(0.1)
        stop.set()
        reader.join()
        writer.join()
    tailer.close()
    return Result("tail", args["lines"], _count(store, "gc_events"), sw.wall, sw.cpu, peak_rss_mb())


SCENARIOS: dict[str, Callable[[dict], Result]] = {
    "file": file_scenario, "file_python": file_python_scenario,
    "bare": bare_scenario, "naive": naive_scenario, "engine_parse": engine_parse_scenario,
    "kafka": kafka_scenario, "otlp": otlp_scenario, "tail": tail_scenario,
    "otlp_store_bare": otlp_store_bare_scenario,
}
SCENARIOS.update(kafka_bare.SCENARIOS)
SCENARIOS.update(file_bare.SCENARIOS)


def main() -> None:
    scenario, raw = sys.argv[1], sys.argv[2]
    threading.current_thread().name = f"bench-{scenario}"
    # The same collector settings `fleetwatch` applies at start, for the paths run in-process here.
    from pipeline.cli import GC_THRESHOLDS

    gc.set_threshold(*GC_THRESHOLDS)
    SCENARIOS[scenario](json.loads(raw)).emit()


if __name__ == "__main__":
    main()
