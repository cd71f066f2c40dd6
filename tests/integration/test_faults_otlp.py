"""OTLP under faults: a worker SIGKILLed mid-ingestion, the store away for a while, a poisoned request.

Invariants, asserted exactly:
* nothing acknowledged is missing: every record of every request answered 200 / OK is in the store;
* senders complete the data: after the fault every record sent is stored;
* a record is stored twice only if its request had to be retried (at-least-once, never silently less);
* while the store is away the receivers answer 503 / UNAVAILABLE and acknowledge nothing.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from pipeline.app import RunContext
from pipeline.normalize.rows import Rows
from pipeline.serve import otlp as otlp_http
from pipeline.serve import otlp_grpc
from pipeline.sink import BatchingWriter, Sink
from pipeline.store.client import StoreError, StoreUnavailable
from pipeline.telemetry import Telemetry
from tests.net import free_port

pytestmark = pytest.mark.integration

RECORDS_PER_REQUEST = 5


def logs_request(service: str, bodies: list[str]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = service
    records = rl.scope_logs.add().log_records
    for body in bodies:
        records.add(time_unix_nano=time.time_ns()).body.string_value = body
    return request


@dataclass
class Sender:
    """Sends numbered requests one after another; retries each until it is acknowledged (bounded)."""

    transport: str
    endpoint: str
    requests: int
    attempts: Counter = field(default_factory=Counter)
    acked_at: dict[int, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def service(self) -> str:
        return f"kill-{self.transport}"

    def bodies(self, r: int) -> list[str]:
        return [f"{self.service} req{r} rec{k}" for k in range(RECORDS_PER_REQUEST)]

    def _send_once(self, r: int) -> bool:
        payload = logs_request(self.service, self.bodies(r))
        if self.transport == "http":
            req = urllib.request.Request(f"{self.endpoint}/v1/logs", data=payload.SerializeToString(),
                                         method="POST", headers={"Content-Type": "application/x-protobuf"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                return False
        try:
            with grpc.insecure_channel(self.endpoint) as channel:
                logs_service_pb2_grpc.LogsServiceStub(channel).Export(payload, timeout=30)
            return True
        except grpc.RpcError:
            return False

    def run(self) -> None:
        deadline = time.monotonic() + 150
        for r in range(self.requests):
            for _ in range(600):  # bounded retries per request
                self.attempts[r] += 1
                if self._send_once(r):
                    self.acked_at[r] = time.monotonic()
                    break
                if time.monotonic() > deadline:
                    self.errors.append(f"request {r} not acknowledged before the deadline")
                    return
                time.sleep(0.1)
            else:
                self.errors.append(f"request {r} never acknowledged")
                return


def test_sigkill_during_ingestion_loses_nothing_acknowledged(restartable) -> None:
    fw = restartable().start()
    senders = [Sender("http", fw.http_url, 50), Sender("grpc", fw.grpc_endpoint, 50)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in senders]
    # An official exporter as well: its own retries must complete its records across the crash.
    provider = LoggerProvider(resource=Resource.create({"service.name": "kill-exporter"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(GrpcLogExporter(endpoint=fw.grpc_endpoint,
                                                                               insecure=True, timeout=60)))
    exporter_done = threading.Event()

    def exporter_loop() -> None:
        logger = provider.get_logger("faults")
        for i in range(40):
            logger.emit(body=f"exporter rec{i}")
        exporter_done.set()

    threads.append(threading.Thread(target=exporter_loop, daemon=True))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(len(s.acked_at) for s in senders) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    killed_at = time.monotonic()
    fw.kill()
    assert sum(len(s.acked_at) for s in senders) >= 30, fw.log()[-3000:]
    acked_before = {s.transport: {r for r, at in s.acked_at.items() if at < killed_at} for s in senders}
    time.sleep(0.5)  # the senders meet a dead port for a while
    fw.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "senders did not finish"
    assert exporter_done.is_set()
    provider.shutdown()
    assert fw.terminate() == 0, fw.log()[-3000:]
    for s in senders:
        assert not s.errors, s.errors
        assert max(s.attempts.values()) > 1, f"{s.transport}: no request was retried; the kill missed it"

    rows = fw.sql("SELECT ServiceName AS s, Body AS b, count() AS n FROM fleetwatch.otel_logs "
                  "WHERE ServiceName LIKE 'kill-%' GROUP BY s, b")
    stored = {(r["s"], r["b"]): int(r["n"]) for r in rows}
    for s in senders:
        for r in acked_before[s.transport]:  # acknowledged before the kill: survived it
            assert all(stored.get((s.service, b), 0) >= 1 for b in s.bodies(r)), (s.transport, r)
        for r in range(s.requests):  # the sender completed everything
            for b in s.bodies(r):
                n = stored.get((s.service, b), 0)
                assert n >= 1, (s.transport, r, b)
                assert n == 1 or s.attempts[r] > 1, f"{b} stored {n} times but sent once"
    exporter_rows = {r["b"] for r in rows if r["s"] == "kill-exporter"}
    assert exporter_rows == {f"exporter rec{i}" for i in range(40)}


# -- the store away for a while, embedded: the writer's call fails until the outage ends --------------------
@pytest.fixture
def receivers_with_outage(settings, store):
    settings.otlp.http = f"127.0.0.1:{free_port()}"
    settings.otlp.grpc = f"127.0.0.1:{free_port()}"
    telemetry = Telemetry()
    sink = Sink(store, telemetry)
    writer = BatchingWriter(sink, max_delay=0.02).start()
    outage = {"until": 0.0, "refused": 0}  # refused: rows whose write failed during the outage

    def write_during_outage(rows: Rows):
        if time.monotonic() < outage["until"]:
            outage["refused"] += rows.total()
            raise StoreUnavailable("injected outage: connection refused")
        return sink.write(rows)

    writer.write_fn = write_during_outage
    ctx = RunContext(settings, store, sink, writer, telemetry)
    http, grpc_receiver = otlp_http.start(ctx), otlp_grpc.start(ctx)
    yield ctx, http, outage
    grpc_receiver.stop(5)
    http.stop(5)
    writer.stop()
    telemetry.shutdown()


@pytest.mark.parametrize("outage_seconds", [1.0, 3.0])
def test_store_outage_exporters_retry_and_everything_lands_once(receivers_with_outage, store, settings,
                                                                outage_seconds) -> None:
    ctx, http, outage = receivers_with_outage
    outage["until"] = time.monotonic() + outage_seconds
    per_exporter = 6

    def export_with(exporter, service: str) -> None:
        provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        logger = provider.get_logger("outage")
        for i in range(per_exporter):
            logger.emit(body=f"{service} {i}")
        provider.shutdown()

    jobs = [
        threading.Thread(target=export_with, args=(HttpLogExporter(
            endpoint=f"http://127.0.0.1:{http.port}/v1/logs", timeout=60), "outage-http")),
        threading.Thread(target=export_with, args=(GrpcLogExporter(
            endpoint=ctx.settings.otlp.grpc, insecure=True, timeout=60), "outage-grpc")),
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
    assert not any(job.is_alive() for job in jobs)
    assert outage["refused"] >= 2, "the exporters never met the outage"  # rows refused: one per exporter at least
    for service in ("outage-http", "outage-grpc"):
        rows = store.rows(f"SELECT Body, count() FROM {settings.database}.otel_logs WHERE ServiceName = {{s:String}} "
                          "GROUP BY Body", {"s": service})
        assert sorted(rows) == sorted((f"{service} {i}", 1) for i in range(per_exporter))


# -- one request the store refuses must not fail the requests merged with it ------------------------------
def test_a_refused_request_fails_alone(store, settings) -> None:
    telemetry = Telemetry()
    sink = Sink(store, telemetry)
    writer = BatchingWriter(sink, max_delay=0.5).start()  # long enough for both to be merged
    try:
        good, bad = Rows(), Rows()
        for i in range(3):
            good.append("otel_logs", {"Timestamp": time.time_ns(), "ServiceName": "innocent", "Body": f"ok {i}"})
        bad.append("otel_logs", {"Timestamp": time.time_ns(), "ServiceName": "poison", "Body": "x"})
        bad.append("quarantine", {"source": "t", "signal": "t", "reason": "r", "raw": "x", "received_at": 2**70})
        futures = [writer.submit(good), writer.submit(bad)]
        assert futures[0].result(30) == {"otel_logs": 3}
        with pytest.raises(StoreError):
            futures[1].result(30)
    finally:
        writer.stop()
        telemetry.shutdown()
    db = settings.database
    assert store.rows(f"SELECT ServiceName, count() FROM {db}.otel_logs GROUP BY 1 ORDER BY 1") == \
        [("innocent", 3), ("poison", 1)]  # poison's otel_logs went in with the merged write, once
