"""One HTTP port: a bound socket, optional TLS, and uvicorn serving a Starlette app on a thread of its own.

The socket is bound in `start` (so a port in use fails `fleetwatch run` at once and port 0 works in tests),
then handed to uvicorn, whose event loop runs on a daemon thread: `fleetwatch run` starts and stops
components synchronously, and the loop never runs blocking work (routes hand that to a capped thread pool).
Stopping closes the listener, lets running requests finish (up to the timeout), then ends the thread.

Starlette on uvicorn was chosen over aiohttp by measurement (bench/serve_stack.py, docs/benchmarks.md):
both moved 1,000-record OTLP requests at the same rate, bound by decoding; uvicorn's protocol classes are
small enough to add the connection limits it lacks (`protocol.GuardedProtocol`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import threading
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from pipeline.config import ServeSettings
from pipeline.serve.protocol import ConnectionLimits, ErrorBody, GuardedProtocol, plain_error

log = logging.getLogger(__name__)


def parse_address(address: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` -> (host, port)."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be host:port, not {address!r}")
    return host.strip("[]") or default_host, int(port)


def raise_fd_limit() -> int:
    """Raise the soft file-descriptor limit to the hard limit (the common default soft limit of 1024 runs out
    under load: sockets plus the engine's part files). Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d to %d", soft, target)
    return soft


def connection_limits(settings: ServeSettings, error_body: ErrorBody = plain_error) -> ConnectionLimits:
    """The per-connection limits of a port; the connection cap never exceeds a quarter of the fd limit."""
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    cap = settings.max_connections
    if fd_limit != resource.RLIM_INFINITY:
        cap = max(8, min(cap, fd_limit // 4))
    return ConnectionLimits(
        max_connections=cap, header_timeout=settings.header_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_requests_per_connection=settings.max_requests_per_connection,
        retry_after=settings.retry_after_seconds, error_body=error_body,
    )


class HttpPort:
    """A running port. `stop` is what `fleetwatch run` calls on shutdown."""

    def __init__(self, name: str, address: str, app: ASGIApp, settings: ServeSettings, *,
                 error_body: ErrorBody = plain_error, tls_cert: Path | None = None,
                 tls_key: Path | None = None) -> None:
        self.name = name
        raise_fd_limit()
        host, port = parse_address(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(1024)
        self.socket.setblocking(False)
        bound = self.socket.getsockname()
        self.host, self.port = host, bound[1]
        self.address = f"[{host}]:{self.port}" if family == socket.AF_INET6 else f"{host}:{self.port}"
        self.limits = connection_limits(settings, error_body)
        config = uvicorn.Config(
            app, http=GuardedProtocol.with_limits(self.limits), loop="asyncio", lifespan="off",
            # the process's logging stays as `fleetwatch` configured it; no access log (URLs carry passwords)
            log_config=None, log_level="warning", access_log=False, server_header=False, date_header=True,
            timeout_keep_alive=settings.keepalive_timeout_seconds, backlog=1024,
            ssl_certfile=str(tls_cert) if tls_cert and tls_key else None,
            ssl_keyfile=str(tls_key) if tls_cert and tls_key else None,
            timeout_graceful_shutdown=30,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"serve-{name}", daemon=True)
        self._started = threading.Event()

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.socket]))

    def start(self) -> HttpPort:
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            self._started.wait(0.01)
        if not self.server.started:
            raise OSError(f"{self.name}: could not serve on {self.address}")
        log.info("%s listening on %s", self.name, self.address)
        return self

    def stop(self, timeout: float) -> None:
        """Stop accepting, let running requests finish within `timeout`, then end the thread."""
        self.server.config.timeout_graceful_shutdown = max(1, int(timeout))
        self.server.should_exit = True
        self._thread.join(timeout + 5)
        log.info("%s on %s stopped", self.name, self.address)
