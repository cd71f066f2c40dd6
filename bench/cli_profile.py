"""Where `fleetwatch ingest gctrace` spends its CPU, thread by thread: `python -m bench.cli_profile`.

Why: the file path's figure (docs/benchmarks.md) is the process's CPU over all threads, which does not say
whether the engine's statement, its background merges, or the Python threads (reading, counting, the engine's
work on the calling thread) carry it, nor whether both cores are busy. This runs the command as the bench's
`file` row does (pipeline.cli.main in this process, the store opened and migrated before the clock) over
`--files` files of `--lines` real gc lines each (bench.data), while a sampler reads every thread's CPU from
/proc/self/task every 20 ms. It prints the process's rate and CPU per million lines, CPU per million lines by
thread kind (the engine names its threads: query pipelines run on `ThreadPool` threads, merges on
`MergeMutate`; Python's threads are `python`, the sampler's own share left out), the Python threads' CPU split
into the engine's calls on them (its planning of each statement), the statements' temporary files and the rest
(Fleetwatch's reading, counting and bookkeeping; `CallingThreadClock`), and how many cores were busy in each
quarter second. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import data
from bench.measure import Stopwatch
from bench.scratch import scratch_dir
from pipeline.config import load_settings
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[int, tuple[str, float]]:
    """Every live thread of this process: tid -> (name, user + system CPU seconds)."""
    out: dict[int, tuple[str, float]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


class Sampler:
    """Reads every thread's CPU every `interval` seconds; keeps the last reading of threads that have ended."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (wall, process CPU of the threads seen)
        self.last: dict[int, tuple[str, float]] = {}
        self.python_names: dict[int, str] = {}  # tid -> the Python thread's name (the OS names them all "python")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.python_names.update((t.native_id, t.name) for t in threading.enumerate() if t.native_id is not None)
            now = thread_cpu()
            self.last.update(now)
            self.samples.append((time.perf_counter(), sum(cpu for _, cpu in now.values())))
            time.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self.before = thread_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.last.update(thread_cpu())

    def by_kind(self, split_python: bool = False) -> dict[str, float]:
        """CPU seconds spent inside the block, by thread name, the sampler's own thread left out. `split_python`:
        Python threads by their Python name ("py:<name>", a trailing "_<n>" of a pool's threads dropped), so that,
        e.g., a consumer's thread and its write threads are told apart; "python" is then what had no such name."""
        own = self._thread.native_id
        kinds: dict[str, float] = {}
        for tid, (os_name, cpu) in self.last.items():
            if tid == own:
                continue
            name = os_name
            if split_python and os_name == "python" and tid in self.python_names:
                name = "py:" + re.sub(r"_\d+$", "", self.python_names[tid])
            spent = cpu - self.before.get(tid, (name, 0.0))[1]
            if spent > 0:
                kinds[name] = kinds.get(name, 0.0) + spent
        return kinds

    def cores(self, step: float = 0.25) -> list[float]:
        """Cores busy per `step` seconds (all threads, the sampler's included)."""
        if len(self.samples) < 2:
            return []
        t0, out, bucket, edge = self.samples[0][0], [], [], step
        for (w0, c0), (w1, c1) in zip(self.samples, self.samples[1:], strict=False):
            if w1 - t0 > edge:
                out.append(sum(bucket) / max(1, len(bucket)))
                bucket, edge = [], edge + step
            bucket.append((c1 - c0) / (w1 - w0))
        return out


class CallingThreadClock:
    """CPU of the Python threads inside the engine's calls (`Store._call`: the engine parsing, analysing and planning
    each statement on the calling thread, before its pipeline runs on the engine's own threads) and inside
    `Store.insert_select_lines` around them (the statement's input written to a temporary file), by
    `time.thread_time` per call; what the Python threads spend outside both is Fleetwatch's reading, counting and
    bookkeeping. Wraps the two methods while the `with` block runs (nothing of the product changes)."""

    def __init__(self) -> None:
        self.engine = 0.0  # CPU inside Store._call, every call
        self.lines_calls = 0.0  # CPU inside Store.insert_select_lines, its engine call included
        self.lines_engine = 0.0  # the part of `engine` inside those
        self.statements = 0
        self._lock = threading.Lock()
        self._inside = threading.local()

    def __enter__(self) -> CallingThreadClock:
        clock = self
        self._call, self._lines = Store._call, Store.insert_select_lines
        call, lines_call = self._call, self._lines

        def timed_call(store: Store, fn: Any) -> Any:
            cpu = time.thread_time()
            try:
                return call(store, fn)
            finally:
                spent = time.thread_time() - cpu
                with clock._lock:
                    clock.engine += spent
                    if getattr(clock._inside, "lines", False):
                        clock.lines_engine += spent

        def timed_lines(store: Store, *args: Any, **kwargs: Any) -> None:
            cpu = time.thread_time()
            clock._inside.lines = True
            try:
                lines_call(store, *args, **kwargs)
            finally:
                clock._inside.lines = False
                with clock._lock:
                    clock.lines_calls += time.thread_time() - cpu
                    clock.statements += 1

        Store._call = timed_call  # type: ignore[method-assign]
        Store.insert_select_lines = timed_lines  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Store._call = self._call  # type: ignore[method-assign]
        Store.insert_select_lines = self._lines  # type: ignore[method-assign]

    def split(self, python: float) -> dict[str, float]:
        """The Python threads' CPU `python` as: the engine's calls, the temporary files, the rest (Fleetwatch's)."""
        return {"engine calls": self.engine, "temporary files": self.lines_calls - self.lines_engine,
                "the rest": python - self.engine - (self.lines_calls - self.lines_engine)}


def prepare_command(tmp: Path, files: int, lines: int, jobs: int) -> tuple[Store, list[str]]:
    """`files` instance files of `lines` gc lines under `tmp`, a migrated store there (returned open, so the engine
    starts before the clock), and the `fleetwatch ingest gctrace` arguments that ingest them with `jobs`: the file
    command as the profiling benches run it in process."""
    paths = [str(p) for p in data.write_instance_files(tmp / "in", files, lines)]
    dsn = f"chdb://{tmp / 'store'}"
    settings = load_settings(clickhouse_dsn=dsn, jobs_enabled=False)
    store = Store.from_settings(settings)
    migrate(store, settings.sql_dir, context_from_settings(settings))
    start = datetime.now(UTC) - timedelta(seconds=data.span_seconds(lines) + 600)
    return store, ["ingest", "gctrace", "--clickhouse-dsn", dsn, "--service", "bench", "--start-time",
                   start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--log-level", "WARNING", "--jobs", str(jobs), *paths]


@contextmanager
def prepared_command(prefix: str, files: int, lines: int, jobs: int) -> Iterator[tuple[Store, list[str]]]:
    """`prepare_command` in a scratch directory: the store closed and the directory removed when the block ends."""
    with scratch_dir(prefix) as tmp:
        store, argv = prepare_command(tmp, files, lines, jobs)
        try:
            yield store, argv
        finally:
            store.close()


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """The command's per-file reports go nowhere while it is measured."""
    stdout = sys.stdout
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull
        try:
            yield
        finally:
            sys.stdout = stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--lines", type=int, default=200_000, help="gc lines per file")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    from pipeline import cli
    from pipeline.sources import files  # noqa: F401 - imported before the clock, as in bench.worker

    with prepared_command("cli-profile-", args.files, args.lines, args.jobs) as (store, argv_cli):
        with quiet_stdout(), Sampler() as sampler, CallingThreadClock() as calls, Stopwatch() as sw:
            code = cli.main(argv_cli)
        lines = args.files * args.lines
        rows = store.scalar(f"SELECT count() FROM {store.database}.gc_events")
        if code != 0 or rows != lines:
            raise RuntimeError(f"exit code {code}, {rows} rows for {lines} lines")
        million = lines / 1e6
        print(f"{lines:,} lines in {args.files} files, --jobs {args.jobs}: {sw.wall:.2f} s wall, "
              f"{lines / sw.wall:,.0f} lines/s, {sw.cpu / million:.2f} CPU s per M (process), "
              f"{sw.cpu / sw.wall:.2f} cores; load average {os.getloadavg()[0]:.1f}")
        for name, cpu in sorted(sampler.by_kind().items(), key=lambda item: -item[1]):
            if cpu / million >= 0.01:
                print(f"  {name:16s} {cpu / million:5.2f} CPU s per M")
        python = sum(cpu for name, cpu in sampler.by_kind().items() if name == "python")
        print(f"  python threads, split ({calls.statements} statements): " + ", ".join(
            f"{part} {cpu / million:.2f}" for part, cpu in calls.split(python).items()) + " CPU s per M")
        print("  cores busy per 0.25 s:", " ".join(f"{c:.1f}" for c in sampler.cores()))
        parts = store.rows(f"SELECT count(), countIf(level > 0) FROM system.parts WHERE database = "
                           f"'{store.database}' AND table = 'gc_events' AND active")
        print(f"  gc_events active parts {parts[0][0]} (merged: {parts[0][1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
