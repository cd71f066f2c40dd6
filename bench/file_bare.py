"""The file command's phases, and the engine's bound beside it: `file_store_bare`.

Why: the `file` row of `bench.run` is the whole of `fleetwatch ingest gctrace` (argument parsing, settings, the
store's client, the migration check, reading and counting the files' bytes, the engine's statements, closing), so
its CPU per million lines does not say how much of it is Fleetwatch's and how much is the engine's. Two tools:

* `CommandPhases`: the command's CPU split into start-up (from `main` to the first input's first byte read),
  ingest (until the command closes its store) and close, by wrapping two names of `pipeline.sources.files` while
  the command runs in this process (nothing of the product changes).
* `file_store_bare`: the very statements the command issues, on the very chunks it would issue them, with the
  same concurrency (`--jobs`: the command's default, one input per thread, each on its own engine connection),
  the inputs prepared in memory before the clock and nothing of Fleetwatch's Python in between: only
  `Store.insert_select_lines` (the statement's input written to a temporary file, as the embedded engine takes
  it, and the call). The statements are recorded by running the command's own ingest of each file against a store
  that records `insert_select_lines` instead of running it (so the chunks, held-back lines and parameters are the
  product's, whatever its batching becomes); the engine's count of a file it then reads in place
  (fastpath/file_lines.sql, `FastGctraceStream.feed_file`) is recorded and replayed too, and a statement that
  reads a file in place replays reading the same file; every other statement there fails the row, since the bench's
  input is clean. The row's CPU is what the product would cost if its Python cost nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.measure import Result, Stopwatch, cpu_seconds, peak_rss_mb
from pipeline.config import load_settings
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate

SERVICE = "bench"


@dataclass
class CommandPhases:
    """Process CPU and wall seconds of the command's phases (see the module docstring)."""

    marks: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (cpu, wall) at the mark

    def mark(self, name: str) -> None:
        if name not in self.marks:
            self.marks[name] = (cpu_seconds(), time.perf_counter())

    @contextmanager
    def watching(self) -> Iterator[CommandPhases]:
        """Marks `first_input` at the first `ingest_stream` call and `close` when the command closes its store."""
        from pipeline.sources import files

        phases = self
        ingest_stream, store_class = files.ingest_stream, files.Store

        def marked_ingest(*args: Any, **kwargs: Any) -> Any:
            phases.mark("first_input")
            return ingest_stream(*args, **kwargs)

        class MarkedStore(store_class):  # type: ignore[misc, valid-type]
            def close(self) -> None:
                phases.mark("close")
                super().close()

        files.ingest_stream = marked_ingest  # type: ignore[assignment]
        files.Store = MarkedStore  # type: ignore[misc]
        try:
            self.mark("start")
            yield self
            self.mark("end")
        finally:
            files.ingest_stream = ingest_stream  # type: ignore[assignment]
            files.Store = store_class  # type: ignore[misc]

    def split(self) -> dict[str, dict[str, float]]:
        """{"start-up" | "ingest" | "close": {"cpu_s", "wall_s"}}, or {} when a mark is missing."""
        names = ("start", "first_input", "close", "end")
        if any(name not in self.marks for name in names):
            return {}
        out: dict[str, dict[str, float]] = {}
        for label, (a, b) in zip(("start-up", "ingest", "close"), pairwise(names), strict=True):
            out[label] = {"cpu_s": round(self.marks[b][0] - self.marks[a][0], 3),
                          "wall_s": round(self.marks[b][1] - self.marks[a][1], 3)}
        return out


@dataclass(frozen=True)
class Statement:
    """One `insert_select_lines` call of the command: its SQL, its input pieces (the bytes as given, or the file the
    engine reads in place), its parameters and settings; or (`query`) the engine's count of such a file."""

    sql: str
    pieces: Sequence[bytes | memoryview] | Path
    parameters: Mapping[str, Any]
    settings: Mapping[str, Any]
    query: bool = False

    @property
    def size(self) -> int:
        if self.query:
            return 0
        if isinstance(self.pieces, Path):
            return self.pieces.stat().st_size
        return sum(len(p) for p in self.pieces)

    def replay(self, store: Store) -> None:
        if self.query:
            list(store.query(self.sql, parameters=self.parameters).named_results())
        else:
            store.insert_select_lines(self.sql, self.pieces, parameters=self.parameters, settings=self.settings)


class RecordingStore(Store):
    """A store whose `insert_select_lines` records the statement instead of running it; any other statement the
    ingest issues is noted in `others` (and runs), so a caller can refuse an input that is not all clean batches."""

    def __init__(self, dsn: str, database: str) -> None:
        super().__init__(dsn, database)
        self.statements: list[Statement] = []
        self.others: list[str] = []
        self.replayed_queries: set[str] = set()  # queries of the command's own that run, and are replayed too

    def insert_select_lines(self, sql: str, data: bytes | Sequence[bytes | memoryview] | Path, *,
                            parameters: Mapping[str, Any] | None = None,
                            settings: Mapping[str, Any] | None = None) -> None:
        if isinstance(data, Path):
            self.statements.append(Statement(sql, data, dict(parameters or {}), dict(settings or {})))
            return
        pieces = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)
        self.statements.append(Statement(sql, [bytes(p) for p in pieces], dict(parameters or {}), dict(settings or {})))

    def command(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.others.append(" ".join(sql.split()[:3]))
        return super().command(sql, *args, **kwargs)

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql in self.replayed_queries:
            parameters = kwargs.get("parameters", args[0] if args else None)
            self.statements.append(Statement(sql, [], dict(parameters or {}), {}, query=True))
        else:
            self.others.append(" ".join(sql.split()[:3]))
        return super().query(sql, *args, **kwargs)


def record_statements(dsn: str, paths: Sequence[str], start_time: str) -> list[list[Statement]]:
    """The statements `fleetwatch ingest gctrace --start-time ...` issues for each of `paths`, in order."""
    from pipeline.sources import files
    from pipeline.sources.gctrace_fast import GctraceFastPath

    settings = load_settings(clickhouse_dsn=dsn, jobs_enabled=False)
    recorder = RecordingStore(settings.clickhouse_dsn, settings.database)
    fast = GctraceFastPath(recorder, settings.sql_dir, context_from_settings(settings))
    recorder.replayed_queries = {fast.file_lines_sql}
    start_ns = files.parse_start_time(start_time)
    out: list[list[Statement]] = []
    try:
        for path in paths:
            recorder.statements = []
            files.ingest_stream(recorder, files.Input(name=path, instance=Path(path).name), service=SERVICE,
                                start_ns=start_ns, fast=fast)
            out.append(recorder.statements)
    finally:
        recorder.close()
    if recorder.others:
        raise RuntimeError(f"the bench input took another path than the clean chunk statement: {recorder.others[:5]}")
    return out


def store_scenario(args: dict) -> Result:
    """`file_store_bare`: the recorded statements replayed on `jobs` threads, each input's in order, as the command's
    thread pool takes the inputs in order; the threads' engine connections are opened before the clock."""
    from bench.cli_profile import Sampler
    from pipeline.sources.files import default_jobs

    settings = load_settings(clickhouse_dsn=args["dsn"], jobs_enabled=False)
    store = Store.from_settings(settings)
    migrate(store, settings.sql_dir, context_from_settings(settings))
    with Stopwatch() as prep:
        work = record_statements(args["dsn"], args["paths"], args["start_time"])
    jobs = max(1, min(int(args.get("jobs") or default_jobs()), len(work)))
    queue = list(range(len(work)))
    lock = threading.Lock()
    ready = threading.Barrier(jobs + 1)
    go = threading.Event()
    failures: list[BaseException] = []

    def replay() -> None:
        store.client()  # this thread's engine connection, before the clock
        ready.wait()
        go.wait()
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    index = queue.pop(0)
                for statement in work[index]:
                    statement.replay(store)
        except BaseException as exc:  # reported after the join
            failures.append(exc)

    threads = [threading.Thread(target=replay, name=f"replay-{k}") for k in range(jobs)]
    for thread in threads:
        thread.start()
    ready.wait()
    # BENCH_THREADS=1: CPU by thread name, as for the file and Kafka rows.
    sampler = Sampler() if os.environ.get("BENCH_THREADS") else None
    if sampler is not None:
        sampler.__enter__()
    with Stopwatch() as sw:
        go.set()
        for thread in threads:
            thread.join()
    if sampler is not None:
        sampler.__exit__()
    if failures:
        raise failures[0]
    from bench.worker import _merges_settled  # (bench.worker imports this module)

    with Stopwatch() as settle:
        _merges_settled(store)
    rows = int(store.scalar(f"SELECT count() FROM {store.database}.gc_events"))
    statements = sum(1 for w in work for s in w if not s.query)
    threads_cpu = {name: round(cpu / args["lines"] * 1e6, 2) for name, cpu in sampler.by_kind().items()} \
        if sampler is not None else {}
    store.close()
    return Result("file_store_bare", args["lines"], rows, sw.wall, sw.cpu, peak_rss_mb(),
                  extra={"statements": statements, "jobs": jobs, "input_mb": round(sum(
                      s.size for w in work for s in w) / 1e6, 1), "record_cpu_s": round(prep.cpu, 2),
                      "threads_cpu_s_per_m": threads_cpu, "merge_settle_cpu_s": settle.cpu,
                      "merge_settle_wall_s": settle.wall})


SCENARIOS = {"file_store_bare": store_scenario}
