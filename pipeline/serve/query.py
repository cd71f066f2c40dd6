"""The query endpoint's HTTP side (default 127.0.0.1:8123): ClickHouse's HTTP interface over the embedded
store, for clickhouse-connect, Grafana, curl, `fleetwatch sql` and `fleetwatch triage`.

`GET|POST /?query=...` (POST body appended to the `query` parameter), `/ping`, `/` (Ok.), `/healthz`,
`/readyz`, and `/metrics` (the pipeline's own telemetry in Prometheus text format). Credentials are checked
from the URL and headers before the body is read; the engine work runs on the port's worker threads, its
output is streamed to the client chunk by chunk (compressed on the fly when the client asked with
`enable_http_compression=1` and Accept-Encoding), and when the client hangs up the query is cancelled
(`gateway.cancel`). Errors have ClickHouse's shape (`Code: N. DB::Exception: ...`,
X-ClickHouse-Exception-Code, ClickHouse's HTTP status for that code); an error raised after the first bytes
were sent is appended to the body, as ClickHouse does.

The engine side (sessions, settings allow-list, reader limits, cancellation) is
`pipeline/store/query_engine.py`; this module only speaks HTTP to it through `QueryGateway`.

X-ClickHouse-Summary follows a ClickHouse server: headers go out with the first flush of the output buffer,
so the summary is what the engine had done by then. The buffer is ClickHouse's `buffer_size` parameter
(default 1 MiB, at most `query.max_result_bytes`); with `wait_end_of_query=1` (what clickhouse-connect sends
for every query and command that is not a stream) the whole result is buffered and the summary covers all of
it. A result that fits in the buffer goes out whole with Content-Length and that summary (and a failure found
in it gets its own error status); a larger one is streamed, its summary counting what was read and produced
before the headers left, with `total_rows_to_read` 0 (not known yet). HTTP trailers are not sent: no client
reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import lz4.frame
import zstandard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pipeline.runtime import RunContext
from pipeline.serve.auth import clickhouse_credentials, clickhouse_ok
from pipeline.serve.body import Refusal, decompress, read_body
from pipeline.serve.routes import (
    PROMETHEUS_CONTENT_TYPE,
    RouteGroup,
    Workers,
    body_disconnected,
    health_response,
    metrics_page,
    refusal_headers,
)
from pipeline.serve.server import HttpPort
from pipeline.store import reader_settings
from pipeline.store.exhaustion import is_exhaustion
from pipeline.store.query_engine import SERVER_NAME, EngineGateway, QueryFailure, QueryRequest

log = logging.getLogger(__name__)

AUTHENTICATION_FAILED = 516
ENCODINGS = ("lz4", "zstd", "gzip", "deflate")
# ClickHouse's default `buffer_size`: a result whose whole output fits in it is sent with Content-Length and
# an exact X-ClickHouse-Summary; a larger one is streamed (chunked) as the engine produces it.
_PREFETCH_BYTES = 1 << 20


def buffer_bytes(params: Mapping[str, str], cap: int) -> int:
    """ClickHouse's `buffer_size` URL parameter: output held before the headers are sent; 1 MiB when absent or
    not a number, never more than `cap` (the reader's result-bytes limit, which bounds a buffered result)."""
    try:
        asked = int(params.get("buffer_size", _PREFETCH_BYTES))
    except ValueError:
        asked = _PREFETCH_BYTES
    return max(1, min(asked, cap))

# Parameters that steer the HTTP layer; every other parameter is handed to the engine as a setting.
TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "role", "stacktrace", "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "http_zlib_compression_level",
    "http_native_compression_disable_checksumming_on_decompress",
    "default_role",
})


_SECRET_PARAM_RE = re.compile(r"((?:password|passwd|key|token|secret|authorization)=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the values of credential-looking URL parameters replaced."""
    return _SECRET_PARAM_RE.sub(r"\1***", text)


class QueryResult(Protocol):
    content_type: str
    headers: Mapping[str, str]

    def chunks(self) -> Iterator[bytes]: ...

    def summary(self) -> Mapping[str, str]: ...

    def close(self) -> None: ...


class QueryGateway(Protocol):
    """The engine as the HTTP side sees it (implemented in pipeline/store/query_engine.py)."""

    def execute(self, request: QueryRequest) -> QueryResult: ...

    def cancel(self, query_id: str) -> None: ...

    def close(self, timeout: float) -> None: ...



def pick_encoding(accept_encoding: str) -> str | None:
    """The first encoding the client lists that we can produce (clients list their preference first)."""
    for item in accept_encoding.split(","):
        name = item.split(";")[0].strip().lower()
        if name in ENCODINGS:
            return name
    return None


class _Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Lz4:
    def __init__(self) -> None:
        self.frame = lz4.frame.LZ4FrameCompressor()
        self.started = False

    def compress(self, data: bytes) -> bytes:
        head = b"" if self.started else self.frame.begin()
        self.started = True
        return head + self.frame.compress(data)

    def flush(self) -> bytes:
        return (b"" if self.started else self.frame.begin()) + self.frame.flush()


def compressor(encoding: str) -> _Compressor:
    if encoding == "gzip":
        return zlib.compressobj(3, zlib.DEFLATED, 31)
    if encoding == "deflate":
        return zlib.compressobj(3)
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=3).compressobj()
    return _Lz4()


def failure_text(failure: QueryFailure) -> bytes:
    return (failure.body().rstrip("\n") + "\n").encode()


def failure_response(failure: QueryFailure | Refusal, query_id: str, timezone: str) -> Response:
    headers = {"X-ClickHouse-Timezone": timezone, "X-ClickHouse-Server-Display-Name": SERVER_NAME}
    if query_id:
        headers["X-ClickHouse-Query-Id"] = query_id
    if isinstance(failure, Refusal):
        headers.update(refusal_headers(failure))
        status = failure.status
        failure = QueryFailure(failure.clickhouse_code, failure.message, failure.clickhouse_name)
    else:
        status = failure.status
        retry_after = getattr(failure, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(max(1, round(retry_after)))
        elif is_exhaustion(text=failure.message, code=failure.code):
            status = 503  # out of fds / memory / slots: the client should retry, not give up
            headers["Retry-After"] = "1"
    headers["X-ClickHouse-Exception-Code"] = str(failure.code)
    return Response(failure_text(failure), status_code=status, media_type="text/plain; charset=UTF-8",
                    headers=headers)


def error_body(status: int, message: str) -> tuple[str, bytes]:
    """Connection-level refusals in ClickHouse's error shape."""
    code = {400: 27, 408: 159, 431: 396, 503: 202}.get(status, 1001)
    return "text/plain; charset=UTF-8", f"Code: {code}. DB::Exception: {message}. ({SERVER_NAME})\n".encode()


@dataclass
class _Prefetched:
    """A started query and the part of its output taken before answering."""

    result: QueryResult
    head: list[bytes]
    rest: Iterator[bytes]
    finished: bool


class _HeldResponse(StreamingResponse):
    """A streamed result that keeps its query's concurrency slot until it is sent or abandoned."""

    release: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.release is not None:
                self.release()


class QueryRoutes:
    def __init__(self, ctx: RunContext, gateway: QueryGateway, *, database: str, read_only: bool, user: str,
                 password: str | None, timezone: str) -> None:
        self.ctx = ctx
        self.gateway = gateway
        self.database = database
        self.read_only = read_only
        self.user = user
        self.password = password
        self.timezone = timezone
        serve = ctx.settings.serve
        self.serve = serve
        self.group = RouteGroup("query", serve.query_max_concurrent, status=503,
                                retry_after=serve.retry_after_seconds)
        self.workers = Workers(serve.worker_threads)
        self.render_metrics = metrics_page(ctx.telemetry)

    # -- small routes ------------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        answer = health_response(self.ctx.health, request.url.path)
        assert answer is not None
        return answer

    async def ping(self, request: Request) -> Response:
        return Response(b"Ok.\n", media_type="text/plain; charset=UTF-8")

    def _authorized(self, request: Request) -> bool:
        return clickhouse_ok(request.headers, request.query_params, self.user, self.password)

    def _auth_failure(self, request: Request) -> Refusal:
        user = clickhouse_credentials(request.headers, request.query_params)[0] or "default"
        return Refusal(401, f"{user}: Authentication failed: password is incorrect, or there is no user with such "
                            "name", close=True, clickhouse_code=AUTHENTICATION_FAILED,
                       clickhouse_name="AUTHENTICATION_FAILED")

    async def metrics(self, request: Request) -> Response:
        if not self._authorized(request):
            return failure_response(self._auth_failure(request), "", self.timezone)
        page = await self.workers.run(self.render_metrics)
        return Response(page, media_type=PROMETHEUS_CONTENT_TYPE)

    async def unknown(self, request: Request, exc: Exception | None = None) -> Response:
        if getattr(exc, "status_code", 404) == 405:
            refusal = Refusal(405, f"{request.method} is not allowed on {request.url.path}", clickhouse_code=1,
                              clickhouse_name="UNSUPPORTED_METHOD")
            return failure_response(refusal, "", self.timezone)
        return failure_response(QueryFailure(1, f"There is no handle {request.url.path}", "UNKNOWN_HANDLE"), "",
                                self.timezone)

    # -- the query -----------------------------------------------------------------------------------------
    async def query(self, request: Request) -> Response:
        # The query string is where clients put `password=`: logged only with credentials masked.
        log.debug('%s - "%s %s"', request.client.host if request.client else "-", request.method,
                  redact(f"{request.url.path}?{request.url.query}"))
        params = dict(request.query_params)
        query_id = params.get("query_id") or str(uuid.uuid4())
        if request.method == "GET" and "query" not in params:
            return await self.ping(request)
        try:
            if not self._authorized(request):
                raise self._auth_failure(request)
            self.group.__enter__()
            try:
                response = await self._run(request, params, query_id)
            except BaseException:
                self.group.__exit__()
                raise
            if isinstance(response, _HeldResponse):
                response.release = self.group.__exit__  # held until the last byte is sent or the client left
            else:
                self.group.__exit__()
            return response
        except (Refusal, QueryFailure) as failure:
            return failure_response(failure, query_id, self.timezone)

    async def _run(self, request: Request, params: dict[str, str], query_id: str) -> Response:
        raw = await read_body(request, max_bytes=self.serve.max_body_bytes, timeout=self.serve.body_timeout_seconds)
        body = decompress(raw, request.headers.get("content-encoding", ""), limit=self.serve.max_query_bytes,
                          max_members=self.serve.max_gzip_members) if raw else b""
        if not body and "query" not in params:
            return await self.ping(request)
        query_request = self._request(request, params, body, query_id)
        started = time.monotonic()
        whole = params.get("wait_end_of_query") == "1"
        hold = buffer_bytes(params, int(self.ctx.settings.query.max_result_bytes))
        work = asyncio.ensure_future(self.workers.run(self._first, query_request, whole, hold,
                                                      abandon_on_cancel=True))
        hangup = asyncio.ensure_future(body_disconnected(request))
        try:
            done, _ = await asyncio.wait({work, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
        if work not in done:
            await self.workers.run(self.gateway.cancel, query_id)
            # the engine work keeps its slot until it has stopped: hanging up must not free capacity early
            with contextlib.suppress(BaseException):
                prefetched = await work
                await self.workers.run(prefetched.result.close)
            log.info("query %s cancelled: the client disconnected after %.1f s", query_id, time.monotonic() - started)
            return Response(b"", status_code=499)
        return self._answer(request, params, query_id, work.result())

    def _first(self, query_request: QueryRequest, whole: bool, hold: int) -> _Prefetched:
        """Worker thread: start the query and take its output up to `hold` bytes (all of it with
        ClickHouse's `wait_end_of_query=1`), so a small result, or a failure inside it, gets an exact answer."""
        result = self.gateway.execute(query_request)
        try:
            chunks = iter(result.chunks())
            head: list[bytes] = []
            size, finished = 0, False
            for chunk in chunks:
                head.append(chunk)
                size += len(chunk)
                if size >= hold and not whole:
                    break
            else:
                finished = True
        except BaseException:
            result.close()
            raise
        return _Prefetched(result, head, chunks, finished)

    def _answer(self, request: Request, params: Mapping[str, str], query_id: str, got: _Prefetched) -> Response:
        result = got.result
        encoding = pick_encoding(request.headers.get("accept-encoding", "")) \
            if params.get("enable_http_compression") == "1" else None
        headers = {"X-ClickHouse-Timezone": self.timezone, "X-ClickHouse-Server-Display-Name": SERVER_NAME,
                   "X-ClickHouse-Query-Id": query_id, **result.headers}
        if encoding:
            headers["Content-Encoding"] = encoding
        # Sent before a streamed result's rest: then it says what was read so far, as a ClickHouse server's
        # does without wait_end_of_query=1, and the total to read is not known yet.
        summary = dict(result.summary())
        if not got.finished:
            summary["total_rows_to_read"] = "0"
        headers["X-ClickHouse-Summary"] = json.dumps(summary, separators=(",", ":"))
        if got.finished:
            result.close()
            failure = getattr(result, "failure", None)
            if failure is not None:  # nothing sent yet: a proper error status, not a 200
                return failure_response(failure, query_id, self.timezone)
            data = b"".join(got.head)
            if encoding:
                pack = compressor(encoding)
                data = pack.compress(data) + pack.flush()
            return Response(data, media_type=result.content_type, headers=headers)
        workers, gateway, rest = self.workers, self.gateway, got.rest

        async def body() -> AsyncIterator[bytes]:
            pack = compressor(encoding) if encoding else None
            finished = False
            try:
                for chunk in got.head:
                    yield pack.compress(chunk) if pack else chunk
                while (chunk := await workers.run(next, rest, None, abandon_on_cancel=True)) is not None:
                    if chunk:
                        yield pack.compress(chunk) if pack else chunk
                finished = True
                if pack:
                    yield pack.flush()
            finally:
                if not finished:
                    with contextlib.suppress(Exception):
                        await workers.run(gateway.cancel, query_id)
                    log.info("query %s cancelled: the client disconnected while reading", query_id)
                with contextlib.suppress(Exception):
                    await workers.run(result.close)

        return _HeldResponse(body(), media_type=result.content_type, headers=headers)

    def _request(self, request: Request, params: Mapping[str, str], body: bytes, query_id: str) -> QueryRequest:
        text = params.get("query", "")
        if body:
            decoded = body.decode("utf-8", errors="replace")
            text = f"{text}\n{decoded}" if text else decoded
        database = params.get("database") or request.headers.get("x-clickhouse-database") or self.database
        settings = {k: v for k, v in params.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")}
        parameters = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
        read_only = True if request.method == "GET" else self.read_only
        return QueryRequest(
            sql=text, database=database, default_format=params.get("default_format") or "TabSeparated",
            settings=settings, parameters=parameters, read_only=read_only, query_id=query_id,
        )

    def app(self) -> Starlette:
        routes = [
            Route("/", self.query, methods=["GET", "POST", "HEAD"]),
            Route("/ping", self.ping, methods=["GET", "HEAD"]),
            Route("/replicas_status", self.ping, methods=["GET"]),
            Route("/healthz", self.health, methods=["GET"]),
            Route("/readyz", self.health, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]
        app = Starlette(routes=routes)
        app.add_exception_handler(404, self.unknown)
        app.add_exception_handler(405, self.unknown)
        return app


class QueryEndpoint:
    """The running query endpoint (a `fleetwatch run` component)."""

    name = "query endpoint"

    def __init__(self, routes: QueryRoutes, port: HttpPort) -> None:
        self.routes = routes
        self.http = port

    @property
    def address(self) -> str:
        return self.http.address

    @property
    def port(self) -> int:
        return self.http.port

    def stop(self, timeout: float) -> None:
        """Stop accepting, cancel the running queries and wait for them: the store may be closed after this."""
        self.http.stop(timeout)
        self.routes.gateway.close(timeout)


def serve_gateway(ctx: RunContext, gateway: QueryGateway, address: str, *, timezone: str) -> QueryEndpoint:
    """Serve `gateway` on `address` with the settings' credentials and limits."""
    settings = ctx.settings
    password = settings.query.password.get_secret_value() if settings.query.password else None
    routes = QueryRoutes(ctx, gateway, database=settings.database, read_only=settings.query.read_only,
                         user=settings.query.user, password=password, timezone=timezone)
    port = HttpPort("query endpoint", address, routes.app(), settings.serve, error_body=error_body).start()
    return QueryEndpoint(routes, port)


def start(ctx: RunContext) -> QueryEndpoint | None:
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
    started = time.monotonic()
    endpoint = serve_gateway(ctx, gateway, settings.query.http, timezone=gateway.timezone())
    log.info("query endpoint on http://%s (%s) in %.0f ms", endpoint.address,
             "read-only" if settings.query.read_only else "read-write", (time.monotonic() - started) * 1000)
    return endpoint
