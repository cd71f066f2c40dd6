"""OTLP/HTTP (default 127.0.0.1:4318): POST /v1/logs, /v1/traces, /v1/metrics, protobuf or JSON.

The order of checks is the point: route and method, then the bearer token (from the headers alone), then
the concurrency cap, then the body within its wire limit and read timeout; only then, on a worker thread,
decompression (bounded), the record count (on the wire, before decoding), decoding and normalizing. The rows
go to the shared writer; the answer waits for the store (OTLP/HTTP spec: 200 with an Export*Response,
partial_success when something was quarantined; 400 with a google.rpc.Status for undecodable bodies; 429 /
503 + Retry-After when full, stopping or out of resources; 401 for a wrong token).

An export is identified by a hash of its signal and decoded body (`dedup_token`): a retry of the same body
after a lost response gets the first attempt's outcome instead of being stored twice.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.normalize.otlp import OtlpDecodeError, OtlpResult, Signal, decode_request
from pipeline.normalize.rows import Rows
from pipeline.runtime import RunContext
from pipeline.serve import otlp_limits
from pipeline.serve.auth import bearer_ok
from pipeline.serve.body import Refusal, decompress, read_body
from pipeline.serve.protocol import plain_error
from pipeline.serve.routes import RouteGroup, health_response, refusal_headers
from pipeline.serve.server import HttpPort
from pipeline.serve.status import HTTP_STATUS, RPC_CODE_OF_HTTP
from pipeline.sources.otlp_export import (
    STORE_WAIT_SECONDS,
    InFlight,
    Outcome,
    Status,
    dedup_token,
    prepare,
    stored_outcome,
    submit,
    success_response,
)

log = logging.getLogger(__name__)

SOURCE = "otlp_http"
PATHS: dict[str, Signal] = {"/v1/logs": "logs", "/v1/traces": "traces", "/v1/metrics": "metrics"}



def media_type(header: str | None) -> str | None:
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind in ("application/x-protobuf", "application/protobuf"):
        return "proto"
    if kind == "application/json":
        return "json"
    return None


def encode(message: Message, encoding: str) -> tuple[bytes, str]:
    if encoding == "json":
        return json_format.MessageToJson(message, indent=None).encode(), "application/json"
    return message.SerializeToString(), "application/x-protobuf"


def refusal_response(refusal: Refusal, encoding: str) -> Response:
    body, content_type = encode(status_pb2.Status(code=RPC_CODE_OF_HTTP.get(refusal.status, 2),
                                                  message=refusal.message), encoding)
    return Response(body, status_code=refusal.status, media_type=content_type, headers=refusal_headers(refusal))


def error_body(status: int, message: str) -> tuple[str, bytes]:
    """Connection-level refusals (before a route ran) as a google.rpc.Status."""
    if status >= 400:
        return "application/x-protobuf", status_pb2.Status(code=RPC_CODE_OF_HTTP.get(status, 2),
                                                           message=message).SerializeToString()
    return plain_error(status, message)


class OtlpRoutes:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.serve = settings.serve
        self.token = settings.otlp.token.get_secret_value() if settings.otlp.token else None
        self.max_decoded = int(settings.otlp.max_request_bytes)
        self.group = RouteGroup("OTLP", self.serve.otlp_max_concurrent, status=429,
                                retry_after=self.serve.retry_after_seconds)
        # The request workers: decompress, count, decode, map (`_decode`), `serve.worker_threads` at once. A plain
        # executor, not anyio's to_thread: its hand-off costs the event loop a fraction of anyio's per request
        # (docs/benchmarks.md, "OTLP receivers: the request workers' Python per record"). `_decode` is pure, so a
        # request cancelled while it runs only drops its result.
        self.workers = ThreadPoolExecutor(max_workers=self.serve.worker_threads, thread_name_prefix="otlp-http")
        self.inflight = InFlight()

    async def health(self, request: Request) -> Response:
        answer = health_response(self.ctx.health, request.url.path)
        assert answer is not None
        return answer

    async def export(self, request: Request) -> Response:
        signal = PATHS[request.url.path]
        encoding = media_type(request.headers.get("content-type"))
        answer_as = encoding or "proto"
        try:
            if not bearer_ok(request.headers.get("authorization"), self.token):
                raise Refusal(401, "missing or wrong bearer token", close=True)
            if encoding is None:
                raise Refusal(415, "Content-Type must be application/x-protobuf or application/json", close=True)
            with self.group:
                if not self.inflight.enter():
                    raise Refusal(503, "shutting down; retry later", retry_after=1.0, close=True)
                try:
                    return await self._export(request, signal, encoding)
                finally:
                    self.inflight.leave()
        except Refusal as refusal:
            return refusal_response(refusal, answer_as)

    async def _export(self, request: Request, signal: Signal, encoding: str) -> Response:
        raw = await read_body(request, max_bytes=self.serve.max_body_bytes, timeout=self.serve.body_timeout_seconds)
        content_encoding = request.headers.get("content-encoding", "")
        prepared = await asyncio.get_running_loop().run_in_executor(
            self.workers, self._decode, signal, raw, content_encoding, encoding, f"http:{request.url.path}")
        if isinstance(prepared, Outcome):
            return self._outcome(signal, prepared, encoding)
        rows, result, token = prepared
        future = submit(self.ctx.writer, rows, token)
        if isinstance(future, Outcome):
            return self._outcome(signal, future, encoding)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), STORE_WAIT_SECONDS)
        except BaseException as exc:
            return self._outcome(signal, stored_outcome(signal, result, exc), encoding)
        return self._outcome(signal, stored_outcome(signal, result, None), encoding)

    def _decode(self, signal: Signal, raw: bytes, content_encoding: str, encoding: str,
                location: str) -> tuple[Rows, OtlpResult, str] | Outcome:
        """Worker thread: decompress, count, decode, normalize. Refusals propagate as `Refusal`."""
        body = decompress(raw, content_encoding, limit=self.max_decoded, max_members=self.serve.max_gzip_members)
        limit = self.serve.max_records_per_request
        try:
            if encoding == "proto":
                otlp_limits.check_record_count(signal, body, limit)
                request = decode_request(signal, body, "proto")
            else:
                request = decode_request(signal, body, "json", json_loads=lambda b: otlp_limits.load_json(
                    b, self.serve.max_json_objects))
                if otlp_limits.count_decoded(signal, request) > limit:
                    raise otlp_limits.TooManyRecords(f"more than {limit} records in one request")
        except (otlp_limits.TooManyRecords, otlp_limits.TooManyObjects) as exc:
            raise Refusal(413, f"{exc}; split the export into smaller batches") from None
        except OtlpDecodeError as exc:
            raise Refusal(400, str(exc)) from None
        prepared = prepare(signal, request, telemetry=self.ctx.telemetry, source=SOURCE, location=location,
                           plain_gc=self.ctx.settings.otlp.gctrace_engine)
        if isinstance(prepared, Outcome):
            return prepared
        rows, result = prepared
        return rows, result, dedup_token(signal, body)

    def _outcome(self, signal: Signal, outcome: Outcome, encoding: str) -> Response:
        if outcome.status is Status.OK:
            assert outcome.result is not None
            body, content_type = encode(success_response(signal, outcome.result), encoding)
            return Response(body, media_type=content_type)
        retry = outcome.retry_after or (1.0 if outcome.status is Status.UNAVAILABLE else 0.0)
        return refusal_response(Refusal(int(HTTP_STATUS[outcome.status]), outcome.message, retry_after=retry),
                                encoding)

    async def not_found(self, request: Request, _exc: Exception | None = None) -> Response:
        path = request.url.path
        if path in PATHS or path in ("/healthz", "/readyz"):
            return refusal_response(Refusal(405, f"{request.method} is not allowed on {path}"), "proto")
        return refusal_response(Refusal(404, f"no OTLP endpoint at {path}; use /v1/logs, /v1/traces or /v1/metrics"),
                                media_type(request.headers.get("content-type")) or "proto")

    def app(self) -> Starlette:
        routes = [Route(path, self.export, methods=["POST"]) for path in PATHS]
        routes += [Route(path, self.health, methods=["GET"]) for path in ("/healthz", "/readyz")]
        app = Starlette(routes=routes)
        app.add_exception_handler(404, self.not_found)
        app.add_exception_handler(405, self.not_found)
        return app


class OtlpHttpPort:
    """The running OTLP/HTTP receiver (a `fleetwatch run` component)."""

    name = "otlp http"

    def __init__(self, routes: OtlpRoutes, port: HttpPort) -> None:
        self.routes = routes
        self.http = port

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def address(self) -> str:
        return self.http.address

    def stop(self, timeout: float) -> None:
        """Refuse new exports (503), let running ones be answered, then close the port."""
        if not self.routes.inflight.drain(timeout):
            log.warning("otlp http: requests still running after %.0f s", timeout)
        self.http.stop(timeout)
        self.routes.workers.shutdown(wait=False)


def start(ctx: RunContext) -> OtlpHttpPort | None:
    settings = ctx.settings.otlp
    address = (settings.http or "").strip()
    if not address:
        return None
    routes = OtlpRoutes(ctx)
    port = HttpPort("otlp http", address, routes.app(), ctx.settings.serve, error_body=error_body,
                    tls_cert=settings.tls_cert, tls_key=settings.tls_key).start()
    return OtlpHttpPort(routes, port)
