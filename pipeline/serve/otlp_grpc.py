"""OTLP/gRPC receiver (default 127.0.0.1:4317): the Logs, Trace and Metrics Export services.

grpcio enforces the size limit (`otlp.max_request_bytes`, applied to the decompressed message, answered
RESOURCE_EXHAUSTED). An interceptor (`_Guard`) runs before the message is decoded: it checks the bearer
token (UNAUTHENTICATED) and the concurrency cap (`serve.grpc_max_concurrent`, answered RESOURCE_EXHAUSTED
with RetryInfo), then hands the raw bytes on; the handler counts the records on the wire
(`serve.max_records_per_request`) before decoding and derives the call's dedup token from its bytes, as the
HTTP port does from its body, so an export retried after a lost response is stored once. Every call waits until
its rows are stored.
When the writer is full the call fails with RESOURCE_EXHAUSTED carrying a RetryInfo, both in the standard
`grpc-status-details-bin` trailer and in `google.rpc.retryinfo-bin`, the trailer the Python exporter
reads; exporters back off for that delay and retry, so nothing is lost.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from pipeline.config import ServeSettings
from pipeline.normalize.otlp import Signal
from pipeline.runtime import RunContext
from pipeline.serve.auth import bearer_ok
from pipeline.serve.otlp_limits import TooManyRecords, check_record_count
from pipeline.serve.status import GRPC_CODE
from pipeline.sources.otlp_export import InFlight, Status, dedup_token, export, success_response

log = logging.getLogger(__name__)

SOURCE = "otlp_grpc"
# The dedup token of the call this thread is handling, derived by the guard from the message's bytes: the
# servicer only sees the decoded message, and re-serializing it would cost as much as hashing it once here.
_CALL_TOKEN: ContextVar[str | None] = ContextVar("otlp_grpc_call_token", default=None)


def _retry_trailers(code: grpc.StatusCode, message: str, retry_after: float) -> list[tuple[str, bytes]]:
    seconds = int(retry_after)
    delay = Duration(seconds=seconds, nanos=int((retry_after - seconds) * 1e9))
    retry_info = error_details_pb2.RetryInfo(retry_delay=delay)
    detail = AnyMessage()
    detail.Pack(retry_info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return [
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry_info.SerializeToString()),
    ]


def _refuse(code: grpc.StatusCode, message: str, retry_after: float = 0.0) -> grpc.RpcMethodHandler:
    """A handler that answers without decoding the request (its bytes are never parsed)."""

    def abort(_raw: bytes, context: grpc.ServicerContext) -> None:
        if retry_after:
            context.set_trailing_metadata(_retry_trailers(code, message, retry_after))
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(abort)


class _Guard(grpc.ServerInterceptor):
    """Token and concurrency checked from the call's metadata, before its message is decoded."""

    def __init__(self, token: str | None, limit: int, retry_after: float, max_records: int) -> None:
        self.token = token
        self.limit = limit
        self.retry_after = retry_after
        self.max_records = max_records
        self.running = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        authorization = next((v for k, v in details.invocation_metadata or () if k == "authorization"), None)
        if isinstance(authorization, bytes):
            authorization = authorization.decode("utf-8", "replace")
        if not bearer_ok(authorization, self.token):
            return _refuse(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        with self._lock:
            if self.running >= self.limit:
                return _refuse(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"{self.limit} exports already running; retry later", self.retry_after)
            self.running += 1
        signal = _SIGNAL_OF_METHOD.get(details.method.rsplit("/", 1)[0], "")
        behaviour, decode = handler.unary_unary, handler.request_deserializer

        def guarded(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                try:
                    check_record_count(signal, raw, self.max_records)
                except TooManyRecords as exc:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{exc}; split the export into smaller batches")
                try:
                    request = decode(raw) if decode else raw
                except Exception as exc:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"undecodable request: {exc}")
                call_token = _CALL_TOKEN.set(dedup_token(signal, raw) if signal else None)
                try:
                    return behaviour(request, context)
                finally:
                    _CALL_TOKEN.reset(call_token)
            finally:
                with self._lock:
                    self.running -= 1

        return grpc.unary_unary_rpc_method_handler(guarded, response_serializer=handler.response_serializer)


_REFUSAL_THREADS = 8
_SIGNAL_OF_METHOD = {
    "/opentelemetry.proto.collector.logs.v1.LogsService": "logs",
    "/opentelemetry.proto.collector.trace.v1.TraceService": "traces",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics",
}


class _Receiver:
    """Shared body of the three services."""

    def __init__(self, ctx: RunContext, inflight: InFlight) -> None:
        self.ctx = ctx
        self.inflight = inflight

    def handle(self, signal: Signal, request: Any, context: grpc.ServicerContext) -> Any:
        if not self.inflight.enter():
            context.abort(grpc.StatusCode.UNAVAILABLE, "shutting down; retry another instance or later")
        try:
            outcome = export(signal, request, writer=self.ctx.writer, telemetry=self.ctx.telemetry, source=SOURCE,
                             location=f"grpc:{context.peer()}", token=_CALL_TOKEN.get(),
                             plain_gc=self.ctx.settings.otlp.gctrace_engine)
        finally:
            self.inflight.leave()
        if outcome.status is Status.OK:
            assert outcome.result is not None
            return success_response(signal, outcome.result)
        code = GRPC_CODE[outcome.status]
        if outcome.status in (Status.FULL, Status.UNAVAILABLE):
            context.set_trailing_metadata(_retry_trailers(code, outcome.message, outcome.retry_after or 1.0))
        context.abort(code, outcome.message)


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: _Receiver) -> None:
        self.receiver = receiver

    def Export(
        self, request: logs_service_pb2.ExportLogsServiceRequest, context: grpc.ServicerContext
    ) -> Any:
        return self.receiver.handle("logs", request, context)


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: _Receiver) -> None:
        self.receiver = receiver

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> Any:
        return self.receiver.handle("traces", request, context)


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: _Receiver) -> None:
        self.receiver = receiver

    def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: grpc.ServicerContext
    ) -> Any:
        return self.receiver.handle("metrics", request, context)


class GrpcReceiver:
    name = "otlp grpc"

    def __init__(self, server: grpc.Server, address: str, inflight: InFlight) -> None:
        self.server = server
        self.address = address
        self.inflight = inflight

    def stop(self, timeout: float) -> None:
        """Stop accepting calls, let running ones finish (they wait for their rows to be stored)."""
        self.inflight.drain(timeout)
        self.server.stop(grace=min(timeout, 5.0)).wait(timeout)
        log.info("otlp grpc receiver on %s stopped", self.address)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def connection_options(serve: ServeSettings) -> list[tuple[str, int]]:
    """grpc core's per-connection limits from `[serve]`: a connection cap enforced at accept, streams per
    connection, idle and age limits (GOAWAY), and keep-alive enforcement: a client pinging more often than
    the minimum interval (or at all while it has no calls) gets strikes and, past the allowed strikes, a
    GOAWAY ENHANCE_YOUR_CALM that closes the connection. None of it is negotiable by the client."""
    return [
        ("grpc.max_allowed_incoming_connections", serve.grpc_max_connections),
        ("grpc.max_concurrent_streams", serve.grpc_max_streams_per_connection),
        ("grpc.max_connection_idle_ms", _ms(serve.grpc_max_connection_idle_seconds)),
        ("grpc.max_connection_age_ms", _ms(serve.grpc_max_connection_age_seconds)),
        ("grpc.max_connection_age_grace_ms", _ms(serve.grpc_max_connection_age_grace_seconds)),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(serve.grpc_min_ping_interval_seconds)),
        ("grpc.http2.max_ping_strikes", serve.grpc_max_ping_strikes),
        ("grpc.keepalive_permit_without_calls", 0),
    ]


def start(ctx: RunContext) -> GrpcReceiver | None:
    settings = ctx.settings.otlp
    address = (settings.grpc or "").strip()
    if not address:
        return None
    limit = int(settings.max_request_bytes)
    serve = ctx.settings.serve
    token = settings.token.get_secret_value() if settings.token else None
    guard = _Guard(token, serve.grpc_max_concurrent, float(serve.retry_after_seconds), serve.max_records_per_request)
    server = grpc.server(
        # One thread per admitted call plus a few for refusals: the guard runs on these threads and refuses past
        # the cap with RetryInfo, which grpcio's own maximum_concurrent_rpcs would not carry.
        futures.ThreadPoolExecutor(max_workers=serve.grpc_max_concurrent + _REFUSAL_THREADS,
                                   thread_name_prefix="otlp-grpc"),
        interceptors=[guard],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            *connection_options(serve),
        ],
    )
    inflight = InFlight()
    receiver = _Receiver(ctx, inflight)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(receiver), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(receiver), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(receiver), server)
    if settings.tls_cert and settings.tls_key:
        credentials = grpc.ssl_server_credentials([(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}")
    server.start()
    log.info("otlp grpc receiver listening on %s", address)
    return GrpcReceiver(server, address, inflight)
