"""One OTLP export, transport-neutral: normalize, hand to the writer, wait until stored, say how it went.

The gRPC and HTTP receivers differ only in framing; what they answer is decided here, so both follow the
OTLP specification's rules the same way:

* stored (some items maybe quarantined) -> success, with partial_success when anything was rejected;
* the writer is full -> RESOURCE_EXHAUSTED / 429 with a retry delay, so the exporter keeps the data;
* the store is unreachable, or we are shutting down -> UNAVAILABLE / 503 (retryable);
* the store refused the rows -> INTERNAL / 500 (not retryable: retrying would fail the same way).

The answer is sent only after the writer's future resolves, i.e. after the insert succeeded.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from pipeline.normalize.otlp import OtlpResult, Signal, normalize_request
from pipeline.normalize.rows import Rows
from pipeline.sink import Backpressure, BatchingWriter
from pipeline.store.client import StoreError, StoreUnavailable
from pipeline.store.exhaustion import is_exhaustion
from pipeline.telemetry import Telemetry

log = logging.getLogger(__name__)

# How long one request waits for its rows to be stored before answering UNAVAILABLE (the exporter retries).
STORE_WAIT_SECONDS = 60.0


class Status(Enum):
    OK = "ok"
    INVALID = "invalid"  # undecodable body: 400 / INVALID_ARGUMENT
    FULL = "full"  # writer full: 429 / RESOURCE_EXHAUSTED
    UNAVAILABLE = "unavailable"  # store down or stopping: 503 / UNAVAILABLE
    FAILED = "failed"  # store refused the rows: 500 / INTERNAL


@dataclass
class Outcome:
    status: Status
    message: str = ""
    result: OtlpResult | None = None
    retry_after: float = 0.0


def success_response(signal: Signal, result: OtlpResult) -> Message:
    """The Export*ServiceResponse: empty on full success, partial_success when something was rejected."""
    if signal == "logs":
        response: Message = ExportLogsServiceResponse()
        if result.rejected or result.error_message:
            response.partial_success.rejected_log_records = result.rejected
            response.partial_success.error_message = result.error_message
    elif signal == "traces":
        response = ExportTraceServiceResponse()
        if result.rejected or result.error_message:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.error_message
    else:
        response = ExportMetricsServiceResponse()
        if result.rejected or result.error_message:
            response.partial_success.rejected_data_points = result.rejected
            response.partial_success.error_message = result.error_message
    return response


class InFlight:
    """Counts requests being handled, so stop() can wait for them to be answered."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()
        self.stopping = False

    def enter(self) -> bool:
        with self._cond:
            if self.stopping:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Refuse new requests and wait until the running ones are answered; False on timeout."""
        with self._cond:
            self.stopping = True
            return self._cond.wait_for(lambda: self._count == 0, timeout)


def dedup_token(signal: str, body: bytes) -> str:
    """The identity of one export: its signal and its uncompressed protobuf or JSON bytes. An exporter retrying
    after a lost response sends the same bytes, on either transport, so the retry is stored once.

    sha256: the fastest strong hash on this hardware (CPU instructions); 128 bits keep collisions out of reach.
    """
    return f"otlp/{signal}/" + hashlib.sha256(body).hexdigest()[:32]


def prepare(
    signal: Signal, request: Message, *, telemetry: Telemetry, source: str, location: str = "",
    plain_gc: bool = False,
) -> tuple[Rows, OtlpResult] | Outcome:
    """Normalize one decoded request into rows (pure work, run on a worker thread by the HTTP layer). With
    `plain_gc` (`otlp.gctrace_engine`), plain gc lines stay lines for the writer's sink to store through the engine."""
    received_at = datetime.now(UTC)
    rows = Rows()
    try:
        result = normalize_request(signal, request, rows=rows, source=source, received_at=received_at,
                                   quarantine={"location": location} if location else None, plain_gc=plain_gc)
    except Exception as exc:  # a mapping bug must answer, not drop the connection
        log.exception("normalizing a %s export failed", signal)
        return Outcome(Status.FAILED, f"internal error while mapping the request: {exc}")
    telemetry.records_in.add(result.accepted + result.rejected, {"source": source, "signal": signal})
    return rows, result


def submit(writer: BatchingWriter, rows: Rows, token: str | None = None) -> Future[dict[str, int]] | Outcome:
    """Hand rows to the writer; an Outcome when it is full. `token` makes a retried request land once."""
    try:
        return writer.submit(rows, token=token)
    except Backpressure as exc:
        # Spread the retries: exporters refused together would otherwise come back together and collide again.
        return Outcome(Status.FULL, str(exc), retry_after=exc.retry_after * random.uniform(1.0, 3.0))


def stored_outcome(signal: Signal, result: OtlpResult, failure: BaseException | None) -> Outcome:
    """The answer once the writer's future resolved (`failure` None) or failed."""
    if failure is None:
        return Outcome(Status.OK, result=result)
    if isinstance(failure, FutureTimeout | TimeoutError):
        return Outcome(Status.UNAVAILABLE, "the store did not confirm the write in time; retry")
    if isinstance(failure, StoreUnavailable):
        return Outcome(Status.UNAVAILABLE, f"store unavailable: {failure}")
    if is_exhaustion(failure):
        # "Too many open files", memory limits: the store is fine, this moment is not. Retry, do not drop.
        log.warning("%s export hit resource exhaustion: %s", signal, str(failure).splitlines()[0][:200])
        return Outcome(Status.UNAVAILABLE, f"out of resources, retry later: {str(failure).splitlines()[0][:300]}",
                       retry_after=1.0)
    if isinstance(failure, StoreError):
        log.error("%s export refused by the store: %s", signal, failure)
        return Outcome(Status.FAILED, f"store refused the rows: {failure}")
    log.error("%s export failed: %s", signal, failure)  # a failed write must never be acknowledged
    return Outcome(Status.UNAVAILABLE, f"write failed: {failure}")


def export(
    signal: Signal,
    request: Message,
    *,
    writer: BatchingWriter,
    telemetry: Telemetry,
    source: str,
    location: str = "",
    token: str | None = None,
    plain_gc: bool = False,
) -> Outcome:
    """Normalize one decoded request, store its rows, and decide the answer (blocking; gRPC threads)."""
    prepared = prepare(signal, request, telemetry=telemetry, source=source, location=location, plain_gc=plain_gc)
    if isinstance(prepared, Outcome):
        return prepared
    rows, result = prepared
    future = submit(writer, rows, token)
    if isinstance(future, Outcome):
        return future
    try:
        future.result(timeout=STORE_WAIT_SECONDS)
    except BaseException as exc:
        return stored_outcome(signal, result, exc)
    return stored_outcome(signal, result, None)
