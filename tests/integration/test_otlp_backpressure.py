"""Push-back per the OTLP specification, on the real store: 429 / RESOURCE_EXHAUSTED with a retry delay when
the writer is full, and the official exporters' retries complete the data; 503 / UNAVAILABLE when the
store is down; nothing acknowledged before it is stored.

The receivers run in this process against the session store, so the writer can be held (a gate around
its write call) to make "full" deterministic. A last test does the same through a real `fleetwatch run`
with a tiny buffer and concurrent exporters.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from pipeline.app import RunContext
from pipeline.serve import otlp as otlp_http
from pipeline.serve import otlp_grpc
from pipeline.sink import BatchingWriter, Sink
from pipeline.store.client import StoreUnavailable
from pipeline.telemetry import Telemetry
from tests.net import free_port

pytestmark = pytest.mark.integration


def logs_body(service: str, n: int) -> bytes:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    sl = rl.scope_logs.add()
    for i in range(n):
        sl.log_records.add(time_unix_nano=time.time_ns(), body=AnyValue(string_value=f"{service} line {i}"))
    return request.SerializeToString()


def post(port: int, body: bytes) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/logs", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.headers


@pytest.fixture
def receivers(settings, store):
    """HTTP and gRPC receivers in this process; `gate` holds every write until it is set."""
    settings.otlp.http = f"127.0.0.1:{free_port()}"
    settings.otlp.grpc = f"127.0.0.1:{free_port()}"
    telemetry = Telemetry()
    sink = Sink(store, telemetry)
    writer = BatchingWriter(sink, max_pending_rows=1, retry_after=0.5, max_delay=0.01).start()
    gate = threading.Event()
    gate.set()
    failure: list[BaseException] = []

    def gated_write(rows):
        if not gate.wait(30):
            raise TimeoutError("gate never opened")
        if failure:
            raise failure[0]
        return sink.write(rows)

    writer.write_fn = gated_write
    ctx = RunContext(settings, store, sink, writer, telemetry)
    http = otlp_http.start(ctx)
    grpc_receiver = otlp_grpc.start(ctx)
    yield ctx, http, grpc_receiver, gate, failure
    gate.set()
    grpc_receiver.stop(5)
    http.stop(5)
    writer.stop()
    telemetry.shutdown()


def count(store, settings, service: str) -> int:
    return store.scalar(f"SELECT count() FROM {settings.database}.otel_logs WHERE ServiceName = {{s:String}}",
                        {"s": service})


def test_full_writer_answers_429_and_resource_exhausted_then_exporters_retry(receivers, store, settings) -> None:
    ctx, http, _, gate, _ = receivers
    port = http.port
    gate.clear()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(post, port, logs_body("held", 3))
        deadline = time.monotonic() + 10
        while ctx.writer.pending_rows == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ctx.writer.pending_rows == 3
        assert not first.done()  # not acknowledged while not stored

        status, headers = post(port, logs_body("refused", 1))
        assert status == 429 and int(headers["Retry-After"]) >= 1

        with grpc.insecure_channel(ctx.settings.otlp.grpc) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(ExportLogsServiceRequest.FromString(logs_body("refused", 1)), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(refused.value.trailing_metadata())
        retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert 0.5 <= retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9 <= 1.5
        assert "grpc-status-details-bin" in trailers

        # Official exporters meet the same refusal, wait and retry; open the gate after they were refused.
        def export_with(exporter, service: str) -> None:
            provider = LoggerProvider(resource=Resource.create({"service.name": service}))
            provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
            provider.get_logger("t").emit(body=f"{service} record")
            provider.shutdown()

        http_exp = pool.submit(export_with, HttpLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs",
                                                           timeout=30), "retried-http")
        grpc_exp = pool.submit(export_with, GrpcLogExporter(endpoint=ctx.settings.otlp.grpc, insecure=True,
                                                           timeout=30), "retried-grpc")
        time.sleep(0.3)  # let both meet the full writer at least once (not a timed assertion)
        assert count(store, settings, "held") == 0
        gate.set()
        assert first.result(30)[0] == 200
        http_exp.result(60)
        grpc_exp.result(60)
    assert count(store, settings, "held") == 3
    assert count(store, settings, "refused") == 0
    assert count(store, settings, "retried-http") == 1
    assert count(store, settings, "retried-grpc") == 1


def test_store_down_answers_503_and_unavailable(receivers) -> None:
    ctx, http, _, _, failure = receivers
    failure.append(StoreUnavailable("connection refused"))
    status, headers = post(http.port, logs_body("down", 2))
    assert status == 503 and "Retry-After" in headers
    with grpc.insecure_channel(ctx.settings.otlp.grpc) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Export(ExportLogsServiceRequest.FromString(logs_body("down", 1)), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_stop_waits_for_requests_in_flight(receivers, store, settings) -> None:
    ctx, http, _, gate, _ = receivers
    gate.clear()
    with ThreadPoolExecutor(2) as pool:
        inflight = pool.submit(post, http.port, logs_body("draining", 2))
        deadline = time.monotonic() + 10
        while ctx.writer.pending_rows == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stopper = pool.submit(http.stop, 30)
        time.sleep(0.2)
        assert not stopper.done()  # stop() waits for the running request
        gate.set()
        stopper.result(30)
        assert inflight.result(30)[0] == 200
    assert count(store, settings, "draining") == 2
