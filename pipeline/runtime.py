"""What a running `fleetwatch run` is made of: the shared context, the component protocol, the run loop.

Every long-running part of the process (receivers, the Kafka source, the scheduler, the query endpoint)
is a *component*: a module-level `start(ctx: RunContext) -> Component | None` (None when its settings
turn it off) and an object with a `name` and `stop(timeout)`. This module is the one place those shapes
are defined, so each component is typed against them and none of them imports `pipeline.app` (which
imports every component: that would be a cycle). `pipeline/app.py` only says which components exist and
in which order they start.

Stopping is the mirror of starting, with one shared deadline: components stop in reverse order, each
with what is left of `settings.shutdown_timeout_seconds`; receivers first, so nothing new is accepted
while what was accepted is written; then the writer flushes; the store closes last.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipeline.config import Settings
from pipeline.health import Health
from pipeline.journal import GcLinesJournal
from pipeline.normalize.rows import Rows
from pipeline.request_ledger import RequestLedger
from pipeline.sink import BatchingWriter, EngineGcLines, Sink, whole_rows
from pipeline.store.client import Store, StoreUnavailable, embedded_path, redact_dsn
from pipeline.store.migrate import context_from_settings, migrate
from pipeline.telemetry import Telemetry, set_telemetry
from pipeline.witness import ReplayWitness

log = logging.getLogger(__name__)


@runtime_checkable
class Component(Protocol):
    """A started part of `fleetwatch run`. `stop` stops accepting work, drains or cancels what is in
    flight, keeps everything already acknowledged, and returns within `timeout` seconds."""

    name: str

    def stop(self, timeout: float) -> None: ...


@dataclass
class RunContext:
    """What every component gets: settings, the store, the shared writer and a stop signal."""

    settings: Settings
    store: Store
    sink: Sink
    writer: BatchingWriter
    telemetry: Telemetry
    stop_event: threading.Event = field(default_factory=threading.Event)
    # Kafka: consume every partition of the topics to its high watermark, commit, then stop the process.
    until_caught_up: bool = False
    exit_code: int = 0
    health: Health | None = None

    def request_stop(self, exit_code: int = 0) -> None:
        """Ask the whole process to stop; a non-zero code is kept (the first failure wins)."""
        if exit_code and not self.exit_code:
            self.exit_code = exit_code
        self.stop_event.set()


# `start(ctx)` of a component module: the started component, or None when its settings turn it off.
Starter = Callable[[RunContext], "Component | None"]


def build_context(settings: Settings, *, until_caught_up: bool = False,
                  stop_event: threading.Event | None = None) -> RunContext:
    """Open the store, migrate (or defer migrations while a server is down), start the shared writer.

    `stop_event` may already have signal handlers on it (see `install_signal_handlers`), so a SIGTERM while
    the store opens or migrates is a clean stop too: nothing is started and the process exits 0.
    """
    telemetry = Telemetry(
        endpoint=settings.self_telemetry_endpoint,
        export_interval_ms=int(settings.self_telemetry_interval_seconds * 1000),
        # Pointed at this process's own receiver (the usual set-up), the export needs the receivers' token.
        headers={"authorization": f"Bearer {settings.otlp.token.get_secret_value()}"} if settings.otlp.token else None,
    )
    set_telemetry(telemetry)
    store = Store.from_settings(settings)
    store.load_insert_libraries()
    health = Health(store)
    try:
        migrate(store, settings.sql_dir, context_from_settings(settings))
        health.migrated.set()
        deferred = False
    except StoreUnavailable:
        if settings.embedded:
            raise
        deferred = True  # a server that is down now: start anyway, answer 503, migrate once it is back
    gc_lines = EngineGcLines(store, settings.sql_dir, context_from_settings(settings))
    sink = Sink(store, telemetry, gc_lines=gc_lines,
                journal=otlp_journal(settings, store, gc_lines, telemetry, migrated=health.migrated))
    writer = BatchingWriter(
        sink,
        max_rows=settings.otlp.batch_max_rows,
        max_delay=settings.otlp.batch_max_seconds,
        max_pending_rows=settings.otlp.max_pending_rows,
        retry_after=float(settings.otlp.retry_after_seconds),
        ledger=RequestLedger(store, settings.sql_dir, context_from_settings(settings)),
    ).start()
    ctx = RunContext(settings, store, sink, writer, telemetry, stop_event=stop_event or threading.Event(),
                     until_caught_up=until_caught_up, health=health)
    health.start()
    if deferred:
        # Until the tables exist a write would be refused as a permanent error (500, dropped by exporters);
        # answer "unavailable" instead, so exporters retry.
        write = writer.write_fn

        def write_after_migrations(rows: Rows) -> dict[str, int]:
            if not health.migrated.is_set():
                raise StoreUnavailable("the store's tables are not created yet (migrations pending)")
            return write(rows)

        writer.write_fn = write_after_migrations
        threading.Thread(target=_migrate_when_reachable, args=(ctx,), name="fleetwatch-migrate", daemon=True).start()
    return ctx


def journal_dir(settings: Settings) -> Path | None:
    """Where the OTLP journal lives (pipeline/journal.py), or None when there is none: turned off, the engine path
    off, no OTLP receiver (a Kafka-only worker), or an in-memory store (which keeps nothing across a restart
    either)."""
    if not (settings.otlp.journal and settings.otlp.gctrace_engine and (settings.otlp.grpc or settings.otlp.http)):
        return None
    if settings.otlp.journal_dir is not None:
        return settings.otlp.journal_dir
    path = embedded_path(settings.clickhouse_dsn)
    if path == ":memory:":
        return None
    # One per database: a segment holds no database name, and a store may hold several (tests do).
    return (Path(path) if path else Path("data")) / "otlp-journal" / settings.database


def otlp_journal(settings: Settings, store: Store, gc_lines: EngineGcLines, telemetry: Telemetry, *,
                 migrated: threading.Event) -> GcLinesJournal | None:
    """The started OTLP journal, its segments stored through `gc_lines` once the tables exist (`migrated`); a
    segment found at start is checked by its witness first (pipeline/witness.py)."""
    directory = journal_dir(settings)
    if directory is None:
        return None
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))

    def store_segment(path: Path, lines: int, name: str, replay: bool) -> int:
        if not migrated.is_set():
            raise StoreUnavailable("the store's tables are not created yet (migrations pending)")
        return gc_lines.write_segment(path, lines, name, guard=witness.ensure if replay else None)

    return GcLinesJournal(
        directory, store_segment, whole_rows,
        segment_lines=settings.otlp.journal_segment_lines, segment_seconds=settings.otlp.journal_segment_seconds,
        idle_seconds=settings.otlp.journal_idle_seconds,
        max_bytes=settings.otlp.journal_max_bytes, fsync=settings.otlp.journal_fsync,
        converters=settings.otlp.journal_converters, telemetry=telemetry,
    ).start()


def _migrate_when_reachable(ctx: RunContext, max_backoff: float = 30.0) -> None:
    """Retry the migrations until the store answers (or the process stops); until then writes fail with
    StoreUnavailable, so receivers answer 503 / UNAVAILABLE and Kafka keeps its offsets."""
    backoff = 1.0
    while not ctx.stop_event.is_set():
        try:
            migrate(ctx.store, ctx.settings.sql_dir, context_from_settings(ctx.settings))
        except StoreUnavailable as exc:
            log.warning("store unavailable (%s); migrations retried in %.0f s", str(exc).splitlines()[0][:200],
                        backoff)
            ctx.stop_event.wait(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        except Exception:
            log.exception("migrations failed; stopping")
            ctx.request_stop(1)
            return
        assert ctx.health is not None
        ctx.health.migrated.set()
        log.info("store reachable again; migrations applied")
        return


def install_signal_handlers(stop_event: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop_event` (the run context's): a clean stop, from the moment the store
    starts opening; a second signal does not kill the process halfway through."""

    def _on_signal(signum: int, _frame: object) -> None:
        if stop_event.is_set():
            log.info("received %s again; still stopping cleanly", signal.Signals(signum).name)
            return
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop_event.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def run_components(ctx: RunContext, starters: Sequence[tuple[str, Starter]]) -> int:
    """Start `starters` in order, wait for a stop request, stop them in reverse; returns the exit code."""
    started: list[Component] = []
    try:
        for label, start in starters:
            if ctx.stop_event.is_set():
                break
            component = start(ctx)
            if component is not None:
                started.append(component)
                log.info("started %s", label)
        if ctx.health is not None:
            ctx.health.started.set()
        log.info("fleetwatch is running on %s (database %s); %d components",
                 ctx.store, ctx.settings.database, len(started))
        print(f"fleetwatch running: store {redact_dsn(ctx.store.dsn)}, database {ctx.settings.database}",
              flush=True)
        # Wake up now and then: a signal delivered to another thread only runs its Python handler when the
        # main thread returns to the interpreter, and a wait without a timeout may never return.
        while not ctx.stop_event.wait(0.5):
            pass
    finally:
        stop_all(ctx, started)
    print("fleetwatch stopped", flush=True)
    return ctx.exit_code


def stop_all(ctx: RunContext, started: Sequence[Component]) -> None:
    """Stop components in reverse start order within one deadline, then the writer, health, the store."""
    ctx.stop_event.set()
    deadline = time.monotonic() + ctx.settings.shutdown_timeout_seconds
    for component in reversed(started):
        try:
            component.stop(timeout=max(deadline - time.monotonic(), 1.0))
        except Exception:
            log.exception("stopping %s failed", component.name)
            ctx.request_stop(1)
    ctx.writer.stop(max(deadline - time.monotonic(), 1.0))
    if ctx.sink.journal is not None:
        ctx.sink.journal.stop(max(deadline - time.monotonic(), 1.0))
    if ctx.health is not None:
        ctx.health.stop()
    ctx.telemetry.shutdown()
    ctx.store.close()
