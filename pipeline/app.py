"""`fleetwatch run`: open the store, migrate, start every configured component, stop them in order.

Each component lives in the module that owns its transport and exposes `start(ctx) -> Component | None`
(None when its settings turn it off). This file only knows the order: receivers first so nothing new is
accepted, then the Kafka source (which flushes and commits), then the writer, the scheduler and last the
query endpoint, so readers can look at the store until the very end.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.config import Settings
from pipeline.health import Health
from pipeline.normalize.rows import Rows
from pipeline.sink import BatchingWriter, Sink
from pipeline.store.client import Store, StoreUnavailable, redact_dsn
from pipeline.store.migrate import context_from_settings, migrate
from pipeline.telemetry import Telemetry, set_telemetry

log = logging.getLogger(__name__)


class Component(Protocol):
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
    # Kafka: consume to the high watermark, flush, commit, then ask the whole process to stop.
    until_caught_up: bool = False
    exit_code: int = 0
    health: Health | None = None


Starter = Callable[[RunContext], "Component | None"]


def _starters() -> list[tuple[str, Starter]]:
    """Components in start order (they stop in reverse). Imported late so `fleetwatch sql` stays light."""
    from pipeline.jobs import scheduler
    from pipeline.serve import otlp as otlp_http
    from pipeline.serve import otlp_grpc
    from pipeline.serve import query as query_http
    from pipeline.sources import kafka, scrape, tail

    return [
        ("query endpoint", query_http.start),
        ("scheduler", scheduler.start),
        ("kafka", kafka.start),
        ("files", tail.start),
        ("scraper", scrape.start),
        ("otlp grpc", otlp_grpc.start),
        ("otlp http", otlp_http.start),
    ]


def build_context(settings: Settings, *, until_caught_up: bool = False) -> RunContext:
    telemetry = Telemetry(
        endpoint=settings.self_telemetry_endpoint,
        export_interval_ms=int(settings.self_telemetry_interval_seconds * 1000),
        # Pointed at this process's own receiver (the usual set-up), the export needs the receivers' token.
        headers={"authorization": f"Bearer {settings.otlp.token.get_secret_value()}"} if settings.otlp.token else None,
    )
    set_telemetry(telemetry)
    store = Store.from_settings(settings)
    health = Health(store)
    try:
        migrate(store, settings.sql_dir, context_from_settings(settings))
        health.migrated.set()
        deferred = False
    except StoreUnavailable:
        if settings.embedded:
            raise
        deferred = True  # a server that is down now: start anyway, answer 503, migrate once it is back
    sink = Sink(store, telemetry)
    writer = BatchingWriter(
        sink,
        max_rows=settings.otlp.batch_max_rows,
        max_delay=settings.otlp.batch_max_seconds,
        max_pending_rows=settings.otlp.max_pending_rows,
        retry_after=float(settings.otlp.retry_after_seconds),
    ).start()
    ctx = RunContext(settings, store, sink, writer, telemetry, until_caught_up=until_caught_up, health=health)
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
            ctx.exit_code = 1
            ctx.stop_event.set()
            return
        assert ctx.health is not None
        ctx.health.migrated.set()
        log.info("store reachable again; migrations applied")
        return


def run(settings: Settings, *, until_caught_up: bool = False, install_signals: bool = True) -> int:
    """Run until SIGINT/SIGTERM (or, with `until_caught_up`, until Kafka is drained). Returns an exit code."""
    ctx = build_context(settings, until_caught_up=until_caught_up)
    if install_signals:
        def _on_signal(signum: int, _frame: object) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            ctx.stop_event.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    started: list[Component] = []
    try:
        for label, start in _starters():
            component = start(ctx)
            if component is not None:
                started.append(component)
                log.info("started %s", label)
        if ctx.health is not None:
            ctx.health.started.set()
        log.info(
            "fleetwatch is running on %s (database %s); %d components",
            ctx.store, settings.database, len(started),
        )
        print(f"fleetwatch running: store {redact_dsn(ctx.store.dsn)}, database {settings.database}", flush=True)
        # Wake up now and then: a signal delivered to another thread only runs its Python handler when the
        # main thread returns to the interpreter, and a wait without a timeout may never return.
        while not ctx.stop_event.wait(0.5):
            pass
    finally:
        for component in reversed(started):
            try:
                component.stop(timeout=30.0)
            except Exception:
                log.exception("stopping %s failed", getattr(component, "name", component))
                ctx.exit_code = ctx.exit_code or 1
        ctx.writer.stop()
        if ctx.health is not None:
            ctx.health.stop()
        ctx.telemetry.shutdown()
        ctx.store.close()
    print("fleetwatch stopped", flush=True)
    return ctx.exit_code
