"""The ClickHouse HTTP interface, served by `fleetwatch run` over its embedded store.

The embedded engine lives inside the pipeline process, so no other program can open its files; this endpoint
is how clickhouse-connect, curl, Grafana's ClickHouse data source, `fleetwatch sql` and `fleetwatch triage`
read it while the pipeline runs. It speaks the subset of ClickHouse's HTTP protocol those clients use:

- `GET|POST /?query=...` with the POST body appended to the `query` parameter (ClickHouse semantics),
  `database`, `default_format`, `param_<name>` query parameters, `query_id`, any other parameter as a setting;
- the engine's own output bytes in whatever format was asked for (FORMAT clause, else `default_format`,
  else TabSeparated), so every client's decoder works unchanged;
- response compression (lz4 frame, zstd, gzip, deflate) when `enable_http_compression=1` and Accept-Encoding
  ask for it; the X-ClickHouse-* headers clients read; errors as `Code: N. DB::Exception: ...` with
  X-ClickHouse-Exception-Code and ClickHouse's HTTP status for that code; `/ping` and `/` answer `Ok.`.

Read-only by default: the statement must pass `sqlguard.check_read_only` (no table functions or functions
that reach files, URLs or other servers, no INTO OUTFILE, output formats and system tables on allow-lists),
settings from the URL and from the statement's SETTINGS clauses must be on `reader_settings`' allow-list
(no file, schema, URL or SQL-carrying setting can reach the engine), and the session runs with the
endpoint's limits and `readonly = 2`. The engine side is `query_engine.EngineGateway`. Sessions are per
request because chdb connection handles are cheap (about a millisecond), share the engine with the
pipeline's `Store`, and a fresh one can never carry a previous request's settings or database.
"""

from __future__ import annotations

import base64
import gzip
import hmac
import io
import json
import logging
import re
import select
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from pipeline.health import Health, health_answer
from pipeline.store import reader_settings
from pipeline.store.query_engine import (
    SERVER_NAME,
    EngineGateway,
    QueryFailure,
    QueryRequest,
    QueryResult,
    engine_failure,
    escape_param,
    quote_identifier,
)

# The engine side lives in query_engine; these names stay importable from here.
__all__ = [
    "EndpointConfig", "EngineGateway", "QueryEndpoint", "QueryFailure", "QueryRequest", "QueryResult",
    "engine_failure", "escape_param", "quote_identifier", "start",
]

log = logging.getLogger(__name__)

# Parameters that steer the HTTP layer; every other parameter is applied as an engine setting.
_TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "role", "stacktrace", "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "http_zlib_compression_level",
    "http_native_compression_disable_checksumming_on_decompress",
    "default_role",
})

BAD_BODY = 27
BODY_TOO_LARGE = 396
# The largest request body (after decompression) read into memory; queries are text, far below this.
MAX_BODY_BYTES = 64 * 1024 * 1024
AUTHENTICATION_FAILED = 516
# A result whose whole output fits in this many bytes is sent with Content-Length and an exact
# X-ClickHouse-Summary; a larger one is streamed (chunked) as the engine produces it.
_PREFETCH_BYTES = 1 << 20


# -- compression -------------------------------------------------------------------------------------------
def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=3)
    if encoding == "deflate":
        return zlib.compress(body, 3)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(body)
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.compress(body)
    raise ValueError(encoding)


def decompress(body: bytes, encoding: str, limit: int | None = None) -> bytes:
    """Decompress a request body, refusing (413) as soon as the output passes `limit` bytes: a small
    compression bomb must not be able to fill the memory of the process that holds the store."""
    limit = MAX_BODY_BYTES if limit is None else limit
    if encoding in ("", "identity"):
        out = body
    elif encoding in ("gzip", "deflate"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise QueryFailure(BAD_BODY, f"Cannot decompress the {encoding} body: {exc}", "CANNOT_DECOMPRESS") from None
    elif encoding == "zstd":
        import zstandard

        try:
            out = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read(limit + 1)
        except zstandard.ZstdError as exc:
            raise QueryFailure(BAD_BODY, f"Cannot decompress the zstd body: {exc}", "CANNOT_DECOMPRESS") from None
    elif encoding == "lz4":
        import lz4.frame

        try:
            out = lz4.frame.LZ4FrameDecompressor().decompress(body, max_length=limit + 1)
        except RuntimeError as exc:
            raise QueryFailure(BAD_BODY, f"Cannot decompress the lz4 body: {exc}", "CANNOT_DECOMPRESS") from None
    else:
        raise QueryFailure(1, f"Unsupported Content-Encoding: {encoding}", "UNKNOWN_ENCODING")
    if len(out) > limit:
        raise QueryFailure(BODY_TOO_LARGE, f"Request body exceeds {limit} bytes", "TOO_LARGE_REQUEST")
    return out


_SUPPORTED_ENCODINGS = ("lz4", "zstd", "gzip", "deflate")


class _Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Lz4Stream:
    def __init__(self) -> None:
        import lz4.frame

        self._c = lz4.frame.LZ4FrameCompressor()
        self._started = False

    def compress(self, data: bytes) -> bytes:
        out = b"" if self._started else self._c.begin()
        self._started = True
        return out + self._c.compress(data)

    def flush(self) -> bytes:
        return (b"" if self._started else self._c.begin()) + self._c.flush()


def stream_compressor(encoding: str) -> _Compressor:
    """An incremental compressor for a streamed response body."""
    if encoding == "gzip":
        return zlib.compressobj(3, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.compressobj(3)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compressobj()
    if encoding == "lz4":
        return _Lz4Stream()
    raise ValueError(encoding)


_SECRET_PARAM_RE = re.compile(r"((?:password|passwd|key|token|secret|authorization)=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the values of credential-looking URL parameters replaced."""
    return _SECRET_PARAM_RE.sub(r"\1***", text)


def pick_encoding(accept_encoding: str) -> str | None:
    """The first encoding the client lists that we can produce (clients list their preference first)."""
    for item in accept_encoding.split(","):
        name = item.split(";")[0].strip().lower()
        if name in _SUPPORTED_ENCODINGS:
            return name
    return None


# -- HTTP ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointConfig:
    database: str
    read_only: bool
    user: str
    password: str | None
    timezone: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fleetwatch"
    gateway: EngineGateway
    config: EndpointConfig
    health: Health | None = None

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries the query string, where clients put `password=`: never log it as sent.
        log.debug("%s - %s", self.address_string(), redact(format % args))

    def do_GET(self) -> None:
        self._serve(read_only=True)

    def do_POST(self) -> None:
        self._serve(read_only=self.config.read_only)

    def _serve(self, *, read_only: bool) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            body = self._read_body()
        except QueryFailure as failure:
            self.close_connection = True  # the rest of the body may still be on the wire
            self._send_failure(failure, "")
            return
        health = health_answer(self.health, parts.path)
        if health is not None:
            self._send(health[0], health[1], {"Content-Type": "application/json"})
            return
        if parts.path in ("/ping", "/replicas_status") or (parts.path == "/" and "query" not in params and not body):
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            if parts.path != "/":
                raise QueryFailure(1, f"There is no handle {parts.path}", "UNKNOWN_HANDLE")
            self._authenticate(params)
            request = self._request(params, body, read_only=read_only, query_id=query_id)
        except QueryFailure as failure:
            self._send_failure(failure, query_id)
            return
        watcher = _HangUpWatcher(self.connection, lambda: self.gateway.cancel(query_id))
        try:
            result = self.gateway.execute(request)
        except QueryFailure as failure:
            watcher.stop()
            self._send_failure(failure, query_id)
            return
        except Exception as exc:
            watcher.stop()
            log.exception("query endpoint request failed")
            self._send_failure(QueryFailure(1001, f"{type(exc).__name__}: {exc}", "STD_EXCEPTION"), query_id)
            return
        try:
            self._send_result(result, params)
        finally:
            watcher.stop()

    def _send_result(self, result: QueryResult, params: Mapping[str, str]) -> None:
        """Small results go out whole with an exact summary; larger ones stream as the engine makes them.
        A client that hangs up mid-way cancels its query."""
        chunks = result.chunks()
        head: list[bytes] = []
        size = 0
        finished = False
        try:
            for chunk in chunks:
                head.append(chunk)
                size += len(chunk)
                if size >= _PREFETCH_BYTES:
                    break
            else:
                finished = True
            failure = getattr(result, "failure", None)
            if finished and failure is not None:  # nothing sent yet: a proper error status, not a 200
                self._send_failure(failure, result.headers.get("X-ClickHouse-Query-Id", ""))
                return
            headers = {"Content-Type": result.content_type, **result.headers,
                       "X-ClickHouse-Summary": json.dumps(dict(result.summary()), separators=(",", ":"))}
            if finished:
                self._send(200, b"".join(head), headers, params=params)
                return
            self._stream(headers, head, chunks, params)
        except OSError:
            log.debug("query endpoint: client went away, cancelling %s", result.headers.get("X-ClickHouse-Query-Id"))
            self.close_connection = True
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _stream(self, headers: Mapping[str, str], head: list[bytes], rest: Iterator[bytes],
                params: Mapping[str, str]) -> None:
        encoding = None
        if params.get("enable_http_compression") == "1":
            encoding = pick_encoding(self.headers.get("Accept-Encoding", ""))
        compressor = stream_compressor(encoding) if encoding else None
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("X-ClickHouse-Server-Display-Name", SERVER_NAME)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return

        def write(data: bytes) -> None:
            if compressor is not None:
                data = compressor.compress(data)
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        for chunk in head:
            write(chunk)
        for chunk in rest:
            write(chunk)
        if compressor is not None:
            tail = compressor.flush()
            if tail:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _read_body(self) -> bytes:
        """The request body, decompressed; at most MAX_BODY_BYTES are ever read or produced."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise QueryFailure(BAD_BODY, "Invalid chunked encoding", "CANNOT_PARSE_INPUT") from None
                if size < 0:
                    raise QueryFailure(BAD_BODY, "Invalid chunk size", "CANNOT_PARSE_INPUT")
                if size == 0:
                    self.rfile.readline(1024)
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise QueryFailure(BODY_TOO_LARGE, f"Request body exceeds {MAX_BODY_BYTES} bytes",
                                       "TOO_LARGE_REQUEST")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            raw = b"".join(chunks)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise QueryFailure(BAD_BODY, "Invalid Content-Length", "CANNOT_PARSE_INPUT") from None
            if length > MAX_BODY_BYTES:
                raise QueryFailure(BODY_TOO_LARGE, f"Request body exceeds {MAX_BODY_BYTES} bytes", "TOO_LARGE_REQUEST")
            raw = self.rfile.read(length) if length > 0 else b""
        return decompress(raw, self.headers.get("Content-Encoding", "").lower()) if raw else raw

    def _authenticate(self, params: Mapping[str, str]) -> None:
        if self.config.password is None:
            return
        user, password = params.get("user"), params.get("password")
        if self.headers.get("X-ClickHouse-User"):
            user, password = self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                user, password = None, None
        user_ok = hmac.compare_digest((user or "").encode(), self.config.user.encode())
        password_ok = hmac.compare_digest((password or "").encode(), self.config.password.encode())
        if not (user_ok and password_ok):
            raise QueryFailure(
                AUTHENTICATION_FAILED,
                f"{user or 'default'}: Authentication failed: password is incorrect, "
                "or there is no user with such name",
                "AUTHENTICATION_FAILED",
            )

    def _request(self, params: Mapping[str, str], body: bytes, *, read_only: bool, query_id: str) -> QueryRequest:
        text = params.get("query", "")
        if body:
            decoded = body.decode("utf-8", errors="replace")
            text = f"{text}\n{decoded}" if text else decoded
        database = params.get("database") or self.headers.get("X-ClickHouse-Database") or self.config.database
        settings = {k: v for k, v in params.items() if k not in _TRANSPORT_PARAMS and not k.startswith("param_")}
        parameters = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
        return QueryRequest(
            sql=text, database=database, default_format=params.get("default_format") or "TabSeparated",
            settings=settings, parameters=parameters, read_only=read_only, query_id=query_id,
        )

    def _send_failure(self, failure: QueryFailure, query_id: str) -> None:
        text = failure.body().rstrip("\n") + "\n"
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(failure.code)}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(failure.retry_after)))
        self._send(failure.status, text.encode(), headers, query_id=query_id)

    def _send(
        self, status: int, body: bytes, headers: Mapping[str, str], *, query_id: str = "",
        params: Mapping[str, str] | None = None,
    ) -> None:
        encoding = None
        if params is not None and params.get("enable_http_compression") == "1":
            encoding = pick_encoding(self.headers.get("Accept-Encoding", ""))
        if encoding:
            body = compress(body, encoding)
        self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else None)
        for name, value in headers.items():
            self.send_header(name, value)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if query_id:
            self.send_header("X-ClickHouse-Query-Id", query_id)
        if "X-ClickHouse-Timezone" not in headers:
            self.send_header("X-ClickHouse-Timezone", self.config.timezone)
        self.send_header("X-ClickHouse-Server-Display-Name", SERVER_NAME)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _HangUpWatcher:
    """Cancels a query when its client closes the connection while the engine still works on it.

    The serving thread is inside the engine (or blocked writing), so a helper thread polls the socket: readable
    with nothing to read means the peer has gone. Data from a pipelining client ends the watch (the socket is
    not ours to read), and so does the end of the request.
    """

    def __init__(self, conn: socket.socket, on_hang_up: Callable[[], None], interval: float = 0.25) -> None:
        self._conn = conn
        self._on_hang_up = on_hang_up
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="query-hangup", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(self._interval):
            try:
                readable, _, _ = select.select([self._conn], [], [], 0)
                if not readable:
                    continue
                if self._conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                    return  # the client sent more: not a hang-up, and not ours to read
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                pass  # reset or closed: gone either way
            if not self._done.is_set():
                log.debug("query endpoint: client hung up, cancelling its query")
                self._on_hang_up()
            return

    def stop(self) -> None:
        self._done.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


class QueryEndpoint:
    """The running endpoint: a threaded HTTP server; each request runs on its own thread."""

    name = "query endpoint"

    def __init__(
        self, address: str, gateway: EngineGateway, config: EndpointConfig, health: Health | None = None
    ) -> None:
        host, port = parse_address(address)
        handler = type("Handler", (_Handler,), {"gateway": gateway, "config": config, "health": health})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (_Server,), {"address_family": family})
        self.server = server_class((host, port), handler)
        self.gateway = gateway
        self.address = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="query-http", daemon=True)

    def start(self) -> QueryEndpoint:
        self._thread.start()
        return self

    def stop(self, timeout: float) -> None:
        """Stop accepting, then cancel running queries and wait for their sessions: after this returns no
        reader's query runs on the engine, so the store can be closed without pulling it from under one."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout)
        self.gateway.close(timeout)


def start(ctx: Any) -> QueryEndpoint | None:
    """Serve the embedded store over HTTP; off for a server DSN (query the server) or an empty address."""
    settings = ctx.settings
    if not settings.embedded or not settings.query.http or ctx.store.path is None:
        return None
    q = settings.query
    limits = reader_settings.ReaderLimits(
        max_memory_usage=q.max_memory_usage, max_execution_time=q.max_execution_time,
        max_result_rows=q.max_result_rows, max_result_bytes=q.max_result_bytes, max_threads=q.max_threads,
    )
    gateway = EngineGateway(ctx.store.path, limits, max_concurrent_queries=q.max_concurrent_queries,
                            retry_after=float(q.retry_after_seconds))
    password = settings.query.password.get_secret_value() if settings.query.password else None
    config = EndpointConfig(
        database=settings.database, read_only=settings.query.read_only, user=settings.query.user,
        password=password, timezone=gateway.timezone(),
    )
    started = time.monotonic()
    endpoint = QueryEndpoint(settings.query.http, gateway, config, getattr(ctx, "health", None)).start()
    log.info(
        "query endpoint on http://%s (%s) in %.0f ms", endpoint.address,
        "read-only" if config.read_only else "read-write", (time.monotonic() - started) * 1000,
    )
    return endpoint
