"""The file-tailing source: follow log files (Kubernetes node logs, any stderr capture) into the store.

`fleetwatch run` calls `start(ctx)`; with no `[files] paths` configured it returns None and the source
stays off. `fleetwatch ingest gctrace --follow FILE` runs the same tailer on one file (`follow_command`).
tailer.py follows files through rotation; checkpoints.py keeps the resume points and batch plans in the
store; identity.py names the service and instance of a path.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading

from pipeline.config import Settings
from pipeline.runtime import RunContext
from pipeline.sink import Sink
from pipeline.sources.tail.checkpoints import CheckpointStore
from pipeline.sources.tail.tailer import Tailer
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate

log = logging.getLogger(__name__)


def build_tailer(settings: Settings, store: Store, sink: Sink, paths: list[str] | None = None) -> Tailer:
    checkpoints = CheckpointStore(store, settings.sql_dir, context_from_settings(settings),
                                  settings.files.node or socket.gethostname())
    return Tailer(sink, checkpoints, settings.files, paths=paths)


class TailSource:
    """The tailer on its own thread, as a `fleetwatch run` component."""

    name = "files"

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.tailer = build_tailer(ctx.settings, ctx.store, ctx.sink)
        self.stop_requested = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fleetwatch-tail", daemon=True)

    def start(self) -> TailSource:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.tailer.run(self.stop_requested)
        except Exception:
            log.exception("file tailer failed")
            self.ctx.exit_code = self.ctx.exit_code or 1
            self.ctx.stop_event.set()

    def stop(self, timeout: float) -> None:
        self.stop_requested.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            log.warning("file tailer did not stop within %.0fs", timeout)
        self.tailer.close()


def start(ctx: RunContext) -> TailSource | None:
    if not ctx.settings.files.paths:
        return None
    return TailSource(ctx).start()


def follow_command(
    settings: Settings, path: str, *, service: str | None, instance: str | None, stop: threading.Event | None = None
) -> int:
    """`fleetwatch ingest gctrace --follow FILE`: tail one file until SIGINT/SIGTERM (or `stop`). Exit code 0."""
    files = settings.files.model_copy(update={
        "service": service or settings.files.service, "instance": instance or settings.files.instance,
    })
    settings = settings.model_copy(update={"files": files})
    store = Store.from_settings(settings)
    stop = stop or threading.Event()

    def _on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    try:
        migrate(store, settings.sql_dir, context_from_settings(settings))
        tailer = build_tailer(settings, store, Sink(store), paths=[path])
        print(f"following {path}", flush=True)
        tailer.run(stop)
        tailer.close()
        print(f"{path}: {tailer.lines} lines read", flush=True)
        return 0
    finally:
        store.close()
