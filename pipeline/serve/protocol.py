"""The HTTP/1.1 connection under every port: uvicorn's httptools protocol with the limits it lacks.

uvicorn bounds idle keep-alive time but not how long a client may take to send its headers, how large they
may be, or how many connections may be open; those are enforced here, per connection, before the app sees
a request:

* a connection past `max_connections` gets its request answered 503 + Retry-After and is closed; past twice
  that it is closed at once without reading (each open socket holds a file descriptor the store may need);
* request line and headers must arrive within `header_timeout_seconds` (slowloris) and fit in
  `max_header_bytes`, else 408 / 431 and close;
* a connection is closed after `max_requests_per_connection` requests;
* malformed requests (two Content-Length headers, bad chunk sizes) are refused 400 by the parser; the body
  of such answers is rendered by the port (`error_body`), so ClickHouse clients get `Code: N. ...`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large",
            503: b"Service Unavailable"}

# (status, message) -> (content type, body) in the port's own error shape
ErrorBody = Callable[[int, str], tuple[str, bytes]]


def plain_error(status: int, message: str) -> tuple[str, bytes]:
    return "text/plain; charset=utf-8", (message + "\n").encode()


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_timeout: float
    max_header_bytes: int
    max_requests_per_connection: int
    retry_after: int
    error_body: ErrorBody = plain_error


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus connection caps, header deadline and size, requests per connection."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, object],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.access_log = False  # request lines carry credentials in their query strings: never logged
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._awaiting_headers = True
        self._served = 0
        self._over_capacity = False

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type[GuardedProtocol]:
        return type("GuardedProtocolForPort", (cls,), {"limits": limits})

    # -- connection ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_connections = len(self.connections)
        if open_connections > 2 * self.limits.max_connections:
            transport.abort()  # far past the cap: do not spend a read on it
            return
        self._over_capacity = open_connections > self.limits.max_connections
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers and len(data) > 4 * self.limits.max_header_bytes:
            # more than the headers may hold, and none of it parsed yet: refuse before feeding the parser
            feed, rest = data[: 2 * self.limits.max_header_bytes], data[2 * self.limits.max_header_bytes:]
        else:
            feed, rest = data, b""
        super().data_received(feed)
        if rest and not self.transport.is_closing():
            super().data_received(rest)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.limits.max_header_bytes:
            self._answer_and_close(431, f"request headers exceed {self.limits.max_header_bytes} bytes")
            raise httptools.HttpParserCallbackError("headers too large")

    # -- parser callbacks --------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._disarm_header_timer()
        if self._over_capacity:
            self._answer_and_close(503, "too many open connections; retry later",
                                   {"Retry-After": str(self.limits.retry_after)})
            raise httptools.HttpParserCallbackError("connection over capacity")
        super().on_headers_complete()
        self._served += 1
        if self._served >= self.limits.max_requests_per_connection and self.cycle is not None:
            self.cycle.keep_alive = False

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(400, msg)

    # -- helpers -------------------------------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self._answer_and_close(408, f"request headers not received within {self.limits.header_timeout:g} s")

    def _answer_and_close(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        if self.transport.is_closing():
            return
        content_type, body = self.limits.error_body(status, message)
        lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Error")),
                 b"content-type: " + content_type.encode(), b"content-length: %d" % len(body),
                 b"connection: close"]
        lines += [f"{k}: {v}".encode() for k, v in (headers or {}).items()]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.transport.close()
