"""OTLP/gRPC receiver (default 127.0.0.1:4317): the Logs, Trace and Metrics Export services.

grpcio decodes the request (gzip included) and enforces the size limit (`otlp.max_request_bytes`, applied
to the decompressed message, answered RESOURCE_EXHAUSTED). Every call waits until its rows are stored.
When the writer is full the call fails with RESOURCE_EXHAUSTED carrying a RetryInfo, both in the standard
`grpc-status-details-bin` trailer and in `google.rpc.retryinfo-bin`, the trailer the Python exporter
reads; exporters back off for that delay and retry, so nothing is lost.
"""

from __future__ import annotations

import hmac
import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from pipeline.normalize.otlp import Signal
from pipeline.runtime import RunContext
from pipeline.sources.otlp_export import InFlight, Status, export, success_response

log = logging.getLogger(__name__)

SOURCE = "otlp_grpc"
MAX_WORKERS = 16
_CODES = {
    Status.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Status.FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Status.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Status.FAILED: grpc.StatusCode.INTERNAL,
}


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


class _Receiver:
    """Shared body of the three services."""

    def __init__(self, ctx: RunContext, token: str | None, inflight: InFlight) -> None:
        self.ctx = ctx
        self.token = f"Bearer {token}".encode() if token else None
        self.inflight = inflight

    def _authorized(self, context: grpc.ServicerContext) -> bool:
        if self.token is None:
            return True
        for key, value in context.invocation_metadata():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                return hmac.compare_digest(given, self.token)
        return False

    def handle(self, signal: Signal, request: Any, context: grpc.ServicerContext) -> Any:
        if not self._authorized(context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if not self.inflight.enter():
            context.abort(grpc.StatusCode.UNAVAILABLE, "shutting down; retry another instance or later")
        try:
            outcome = export(signal, request, writer=self.ctx.writer, telemetry=self.ctx.telemetry, source=SOURCE,
                             location=f"grpc:{context.peer()}")
        finally:
            self.inflight.leave()
        if outcome.status is Status.OK:
            assert outcome.result is not None
            return success_response(signal, outcome.result)
        code = _CODES[outcome.status]
        if outcome.status is Status.FULL:
            context.set_trailing_metadata(_retry_trailers(code, outcome.message, outcome.retry_after))
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


def start(ctx: RunContext) -> GrpcReceiver | None:
    settings = ctx.settings.otlp
    address = (settings.grpc or "").strip()
    if not address:
        return None
    limit = int(settings.max_request_bytes)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ],
        maximum_concurrent_rpcs=MAX_WORKERS * 8,
    )
    inflight = InFlight()
    token = settings.token.get_secret_value() if settings.token else None
    receiver = _Receiver(ctx, token, inflight)
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
