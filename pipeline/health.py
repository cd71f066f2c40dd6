"""Liveness and readiness, answered on the OTLP/HTTP port and on the query endpoint's port.

* `/healthz`: the process is alive and its HTTP server answers. Always 200; a hung process does not answer.
* `/readyz`: 200 only when the store answered the last probe, the migrations are applied and every
  configured component has started; otherwise 503 naming the checks that fail. A load balancer or an
  orchestrator then sends no data to an instance that could only answer 503 / UNAVAILABLE.

The store is probed on a thread of its own every few seconds (one client, `SELECT 1`), never inside a
request: health paths are answered on the serving layer's event loop, where a store call would block every
connection, and a probe per request would let a flood of health checks load the store.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

log = logging.getLogger(__name__)

PATHS = ("/healthz", "/readyz")


class Probed(Protocol):
    """What the probe needs of the store (`pipeline.store.client.Store`). A protocol rather than an import:
    the store's query endpoint answers health paths, so importing the store here would be a cycle."""

    def command(self, sql: str) -> object: ...


class Health:
    """What `/healthz` and `/readyz` report for one `fleetwatch run` process."""

    def __init__(self, store: Probed, interval: float = 2.0) -> None:
        self.store = store
        self.interval = interval
        self.migrated = threading.Event()
        self.started = threading.Event()
        self._store_ok = False
        self._store_error = "not probed yet"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Health:
        self.probe()
        self._thread = threading.Thread(target=self._loop, name="fleetwatch-health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)

    def probe(self) -> bool:
        """Ask the store once; remember the answer for `/readyz`."""
        try:
            self.store.command("SELECT 1")
        except Exception as exc:  # StoreUnavailable, StoreError, or anything else: never kill the thread
            self._store_ok, self._store_error = False, (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        else:
            self._store_ok, self._store_error = True, ""
        return self._store_ok

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.probe()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks = {
            "store": "ok" if self._store_ok else f"unavailable: {self._store_error}",
            "migrations": "ok" if self.migrated.is_set() else "not applied yet",
            "components": "ok" if self.started.is_set() else "starting",
        }
        return all(v == "ok" for v in checks.values()), checks


def health_answer(health: Health | None, path: str) -> tuple[int, bytes] | None:
    """(HTTP status, JSON body) for a health path, or None when `path` is not one.

    Without a `Health` (a component started outside `fleetwatch run`) both paths report only liveness.
    """
    if path == "/healthz":
        return 200, b'{"status":"alive"}\n'
    if path != "/readyz":
        return None
    if health is None:
        return 200, b'{"status":"ready","checks":{}}\n'
    ready, checks = health.readiness()
    body = json.dumps({"status": "ready" if ready else "not ready", "checks": checks}, separators=(",", ":"))
    return (200 if ready else 503), (body + "\n").encode()
