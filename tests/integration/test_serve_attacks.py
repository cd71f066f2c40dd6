"""Hostile clients against the serving layer (pipeline/serve/) and the OTLP/gRPC guard.

The receivers and the query endpoint are the real components on the session's embedded store, started as
`fleetwatch run` starts them, with short timeouts so slow clients are cut off within seconds. Raw sockets
are used only for the attacks themselves; every test ends by checking that ingestion still answers.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from pydantic import SecretStr

from pipeline.app import RunContext
from pipeline.health import Health
from pipeline.serve import otlp as otlp_http
from pipeline.serve import otlp_grpc
from pipeline.serve.query import QueryEndpoint, serve_gateway
from pipeline.sink import BatchingWriter, Sink
from pipeline.sources.otlp_export import dedup_token
from pipeline.store.query_engine import EngineGateway
from pipeline.telemetry import Telemetry
from tests.integration.test_faults_otlp import logs_request
from tests.net import free_port

pytestmark = pytest.mark.integration

TOKEN = "s3rve-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


@dataclass
class Running:
    ctx: RunContext
    http: otlp_http.OtlpHttpPort
    grpc_receiver: otlp_grpc.GrpcReceiver
    query: QueryEndpoint

    @property
    def db(self) -> str:
        return self.ctx.settings.database


@pytest.fixture
def running(settings, store) -> Iterator[Running]:
    settings.otlp.http = f"127.0.0.1:{free_port()}"
    settings.otlp.grpc = f"127.0.0.1:{free_port()}"
    settings.otlp.token = SecretStr(TOKEN)
    settings.query.user, settings.query.password = "reader", SecretStr("pw")
    serve = settings.serve
    serve.header_timeout_seconds = 1.0
    serve.body_timeout_seconds = 1.5
    serve.max_connections = 8
    serve.max_records_per_request = 50_000
    serve.grpc_max_concurrent = 2
    serve.max_requests_per_connection = 5
    telemetry = Telemetry()
    sink = Sink(store, telemetry)
    writer = BatchingWriter(sink, max_delay=0.01).start()
    health = Health(store, interval=0.5)
    health.migrated.set()
    ctx = RunContext(settings, store, sink, writer, telemetry, health=health.start())
    http, grpc_receiver = otlp_http.start(ctx), otlp_grpc.start(ctx)
    assert http is not None and grpc_receiver is not None
    query = serve_gateway(ctx, EngineGateway(store.path), f"127.0.0.1:{free_port()}", timezone="UTC")
    health.started.set()
    yield Running(ctx, http, grpc_receiver, query)
    query.stop(5)
    grpc_receiver.stop(5)
    http.stop(5)
    writer.stop()
    health.stop()
    telemetry.shutdown()


def post(port: int, body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/logs") -> tuple[int, dict,
                                                                                                       bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def still_ingesting(running: Running, service: str) -> None:
    """A normal export is stored after the attack."""
    body = logs_request(service, [f"after the attack on {service}"]).SerializeToString()
    assert post(running.http.port, body, AUTH)[0] == 200
    count = running.ctx.store.scalar(f"SELECT count() FROM {running.db}.otel_logs WHERE ServiceName = {{s:String}}",
                                     {"s": service})
    assert count == 1


def raw_exchange(port: int, data: bytes, *, timeout: float = 30) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        return read_until_closed(conn)


def read_until_closed(conn: socket.socket) -> bytes:
    answer = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


# -- slow clients ---------------------------------------------------------------------------------------------
def test_slowloris_headers_and_bodies_time_out(running: Running) -> None:
    port = running.http.port
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # a header line now and then, never the end of the headers
            conn.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.2)
        answer = read_until_closed(conn)
    assert status_of(answer) == 408 and time.monotonic() - started < 10, answer[:200]

    started = time.monotonic()
    head = (b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head + b"\x0a" * 10)  # ten bytes of a thousand, then nothing
        answer = read_until_closed(conn)
    assert status_of(answer) == 408 and time.monotonic() - started < 10, answer[:200]

    query_port = running.query.port  # the query endpoint has the same limits
    with socket.create_connection(("127.0.0.1", query_port), timeout=30) as conn:
        conn.sendall(b"GET /?query=SELECT+1 HTTP/1.1\r\n")
        answer = read_until_closed(conn)
    assert status_of(answer) == 408 and b"Code: " in answer, answer[:200]
    still_ingesting(running, "after-slowloris")


def test_headers_too_large_and_duplicate_content_length(running: Running) -> None:
    port = running.http.port
    huge = b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * (100 * 1024) + b"\r\n\r\n"
    assert status_of(raw_exchange(port, huge)) == 431
    for content_lengths in ((b"5", b"6"), (b"5", b"5")):
        request = (b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                   b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                   b"Content-Length: " + content_lengths[0] + b"\r\nContent-Length: " + content_lengths[1]
                   + b"\r\n\r\n12345")
        assert status_of(raw_exchange(port, request)) == 400, content_lengths
    still_ingesting(running, "after-headers")


# -- bodies -------------------------------------------------------------------------------------------------
def test_unauthenticated_large_bodies_are_refused_before_being_read(running: Running) -> None:
    """The answer arrives while not one byte of the 16 MiB body has been sent."""
    for port, head in (
        (running.http.port, b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"),
        (running.query.port, b"POST / HTTP/1.1\r\nHost: x\r\n"),
    ):
        for auth in (b"", b"Authorization: Bearer wrong\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(head + auth + b"Content-Length: %d\r\n\r\n" % (16 * 1024 * 1024))
                answer = read_until_closed(conn)
            assert status_of(answer) == 401, (port, answer[:300])
    still_ingesting(running, "after-unauthenticated")


def test_lowercase_bearer_scheme_is_accepted(running: Running) -> None:
    body = logs_request("lowercase-bearer", ["one"]).SerializeToString()
    assert post(running.http.port, body, {"Authorization": f"bearer {TOKEN}"})[0] == 200
    assert post(running.http.port, body, {"Authorization": f"BEARER {TOKEN}x"})[0] == 401
    with grpc.insecure_channel(running.ctx.settings.otlp.grpc) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        stub.Export(logs_request("lowercase-bearer-grpc", ["two"]), timeout=30,
                    metadata=[("authorization", f"bearer {TOKEN}")])
    db = running.db
    assert running.ctx.store.scalar(f"SELECT count() FROM {db}.otel_logs WHERE ServiceName LIKE 'lowercase-bearer%'") \
        == 2


def _empty_records_request(count: int) -> bytes:
    """An ExportLogsServiceRequest of `count` empty log records, built on the wire (2 bytes a record)."""
    records = b"\x12\x00" * count
    scope = b"\x12" + _varint(len(records)) + records
    resource = b"\x0a" + _varint(len(scope)) + scope
    return resource


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_record_flood_is_refused_before_decoding(running: Running) -> None:
    flood = _empty_records_request(3_000_000)  # 6 MB on the wire
    assert len(flood) < running.ctx.settings.serve.max_body_bytes
    started = time.monotonic()
    status, _, answer = post(running.http.port, flood, AUTH)
    elapsed = time.monotonic() - started
    assert status == 413 and b"records" in answer, (status, answer[:200])
    assert elapsed < 5, elapsed  # counted up to the limit, never decoded
    # the same flood compressed, and over gRPC
    status, _, _ = post(running.http.port, gzip.compress(flood), {**AUTH, "Content-Encoding": "gzip"})
    assert status == 413
    with grpc.insecure_channel(running.ctx.settings.otlp.grpc,
                               options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        export = channel.unary_unary(LOGS_METHOD)
        with pytest.raises(grpc.RpcError) as refused:
            export(flood, timeout=30, metadata=[("authorization", f"Bearer {TOKEN}")])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "records" in refused.value.details()
    # under the limit is fine
    assert post(running.http.port, _empty_records_request(1000), AUTH)[0] == 200
    still_ingesting(running, "after-record-flood")


def test_gzip_member_flood_is_refused_quickly(running: Running) -> None:
    member = gzip.compress(b"")
    flood = member * 400_000  # about 8 MB of empty gzip members
    flood = flood[: running.ctx.settings.serve.max_body_bytes - 1024]
    started = time.monotonic()
    status, _, answer = post(running.http.port, flood, {**AUTH, "Content-Encoding": "gzip"})
    assert status == 413 and b"members" in answer, (status, answer[:200])
    assert time.monotonic() - started < 5
    still_ingesting(running, "after-gzip-flood")


def test_zstd_frame_flood_is_refused_quickly_and_a_multi_frame_body_is_stored(running: Running) -> None:
    """Empty zstd frames cost a decoder each, like empty gzip members: a flood is refused from the frame
    headers within `serve.max_gzip_members`; a real export split over several frames is stored whole."""
    import zstandard

    flood = zstandard.ZstdCompressor().compress(b"") * 400_000  # about 3.6 MB of empty frames
    started = time.monotonic()
    status, _, answer = post(running.http.port, flood, {**AUTH, "Content-Encoding": "zstd"})
    assert status == 413 and b"zstd frames" in answer, (status, answer[:200])
    assert time.monotonic() - started < 5
    body = logs_request("zstd-frames", [f"record {i}" for i in range(200)]).SerializeToString()
    third = len(body) // 3
    frames = b"".join(zstandard.ZstdCompressor(write_checksum=True).compress(part)
                      for part in (body[:third], body[third:2 * third], body[2 * third:]))
    assert post(running.http.port, frames, {**AUTH, "Content-Encoding": "zstd"})[0] == 200
    count = running.ctx.store.scalar(f"SELECT count() FROM {running.db}.otel_logs WHERE ServiceName = 'zstd-frames'")
    assert count == 200
    still_ingesting(running, "after-zstd-flood")


def test_deeply_nested_json_gets_400(running: Running) -> None:
    for depth in (1_000, 100_000):
        nested = b'{"resourceLogs": ' + b"[" * depth + b"]" * depth + b"}"
        status, _, answer = post(running.http.port, nested, {**AUTH, "Content-Type": "application/json"})
        assert status == 400 and answer, (depth, status)
        nested = b'{"resourceLogs": [{"resource": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}]}"
        status, _, _ = post(running.http.port, nested, {**AUTH, "Content-Type": "application/json"})
        assert status == 400, depth
    still_ingesting(running, "after-nested-json")


def test_json_numbers_out_of_any_integer_range_get_400(running: Running) -> None:
    """Python's JSON parser reads `Infinity` and `-Infinity` (and 1e400 as infinity); where protobuf wants an integer
    they are a bad request, not a server error."""
    for value in (b"Infinity", b"-Infinity", b"1e400"):
        body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": ' + value + b"}]}]}]}"
        status, _, answer = post(running.http.port, body, {**AUTH, "Content-Type": "application/json"})
        assert status == 400 and b"invalid OTLP/JSON" in answer, (value, status, answer)
    still_ingesting(running, "after-infinite-json")


# -- connections and concurrency -----------------------------------------------------------------------------
def test_connection_cap_answers_503_with_retry_after(running: Running) -> None:
    port = running.http.port
    cap = running.http.http.limits.max_connections
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(cap)]
    try:
        # the listener has accepted them all once a request on a fresh connection is refused
        deadline = time.monotonic() + 30
        while True:
            answer = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if status_of(answer) == 503 or time.monotonic() > deadline:
                break
        assert status_of(answer) == 503 and b"retry-after: 1" in answer.lower(), answer[:300]
    finally:
        for conn in idle:
            conn.close()
    deadline = time.monotonic() + 30
    while post(running.http.port, b"", AUTH, path="/healthz")[0] != 405 and time.monotonic() < deadline:
        pass
    still_ingesting(running, "after-connection-cap")


def test_grpc_unauthenticated_large_message_is_refused_without_decoding(running: Running) -> None:
    """16 MB of bytes that are not protobuf: refused UNAUTHENTICATED, which decoding first could not say."""
    garbage = b"\xff" * (16 * 1024 * 1024 - 64)
    with grpc.insecure_channel(running.ctx.settings.otlp.grpc,
                               options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        export = channel.unary_unary(LOGS_METHOD)
        for metadata in ([], [("authorization", "Bearer wrong")]):
            with pytest.raises(grpc.RpcError) as refused:
                export(garbage, timeout=60, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as refused:  # with the token, the same bytes are decoded and refused
            export(garbage, timeout=60, metadata=[("authorization", f"Bearer {TOKEN}")])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    still_ingesting(running, "after-grpc-garbage")


def test_grpc_concurrency_limit_carries_retry_info(running: Running) -> None:
    release = threading.Event()
    writer = running.ctx.writer
    write = writer.write_fn

    def slow_write(rows):  # hold the store so calls pile up
        release.wait(60)
        return write(rows)

    writer.write_fn = slow_write
    results: list[object] = []
    try:
        with grpc.insecure_channel(running.ctx.settings.otlp.grpc) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            metadata = [("authorization", f"Bearer {TOKEN}")]
            futures = [stub.Export.future(logs_request("grpc-cap", [f"held {i}"]), timeout=60, metadata=metadata)
                       for i in range(running.ctx.settings.serve.grpc_max_concurrent)]
            guard_running = lambda: running.grpc_receiver.inflight._count  # noqa: E731
            deadline = time.monotonic() + 30
            while guard_running() < len(futures) and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(logs_request("grpc-cap", ["one too many"]), timeout=30, metadata=metadata)
            error = refused.value
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            trailers = dict(error.trailing_metadata())
            status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
            retry = error_details_pb2.RetryInfo()
            assert status.details and status.details[0].Unpack(retry)
            assert retry.retry_delay.seconds >= 1
            release.set()
            results = [f.result(timeout=60) for f in futures]
    finally:
        release.set()
        writer.write_fn = write
    assert len(results) == 2
    still_ingesting(running, "after-grpc-cap")


# -- idempotency ----------------------------------------------------------------------------------------------
def test_an_export_retried_with_the_same_body_is_stored_once(running: Running) -> None:
    """The official exporter sends the same batch twice (a retry after a lost response): one copy stored."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "retried-export"}))
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("test")
    for i in range(5):
        logger.emit(body=f"retried line {i}")
    batch = memory.get_finished_logs()
    exporter = HttpLogExporter(endpoint=f"http://127.0.0.1:{running.http.port}/v1/logs", headers=AUTH)
    try:
        assert exporter.export(batch) == LogRecordExportResult.SUCCESS
        assert exporter.export(batch) == LogRecordExportResult.SUCCESS
    finally:
        exporter.shutdown()
        provider.shutdown()
    db = running.db
    assert running.ctx.store.scalar(f"SELECT count() FROM {db}.otel_logs WHERE ServiceName = 'retried-export'") == 5
    # a different body is a different export
    body = logs_request("retried-export", ["new line"]).SerializeToString()
    assert post(running.http.port, body, AUTH)[0] == 200
    assert running.ctx.store.scalar(f"SELECT count() FROM {db}.otel_logs WHERE ServiceName = 'retried-export'") == 6


def test_a_grpc_export_retried_with_the_same_message_is_stored_once(running: Running) -> None:
    """The official gRPC exporter sends the same batch twice: the guard derives the call's token from the
    message bytes, so the retry is not queued again; the same bytes over OTLP/HTTP (an exporter failing over to
    the other port) carry the same token and are not stored again either."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "retried-grpc-export"}))
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("test")
    for i in range(5):
        logger.emit(body=f"retried grpc line {i}")
    batch = memory.get_finished_logs()
    exporter = GrpcLogExporter(endpoint=running.ctx.settings.otlp.grpc, insecure=True,
                               headers={"authorization": f"Bearer {TOKEN}"})
    count_sql = f"SELECT count() FROM {running.db}.otel_logs WHERE ServiceName = 'retried-grpc-export'"
    token = dedup_token("logs", encode_logs(batch).SerializeToString())
    try:
        assert exporter.export(batch) == LogRecordExportResult.SUCCESS
        assert token in running.ctx.writer._recent
        first = running.ctx.writer._recent[token]
        assert exporter.export(batch) == LogRecordExportResult.SUCCESS
        assert running.ctx.writer._recent[token] is first  # the retry was answered from the first write
        assert post(running.http.port, encode_logs(batch).SerializeToString(), AUTH)[0] == 200
        assert running.ctx.writer._recent[token] is first
        assert running.ctx.store.scalar(count_sql) == 5
    finally:
        exporter.shutdown()
        provider.shutdown()


# -- the query port ------------------------------------------------------------------------------------------
def test_metrics_page_and_streamed_query(running: Running) -> None:
    still_ingesting(running, "metrics-page")
    url = f"http://{running.query.address}"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{url}/metrics", timeout=30)
    assert denied.value.code == 401
    req = urllib.request.Request(f"{url}/metrics?user=reader&password=pw")
    with urllib.request.urlopen(req, timeout=30) as resp:
        page = resp.read().decode()
    assert 'fleetwatch_records_received_total{signal="logs",source="otlp_http"}' in page, page[:2000]
    query = urllib.parse.quote("SELECT number FROM numbers(200000) FORMAT JSONEachRow")
    with urllib.request.urlopen(f"{url}/?user=reader&password=pw&query={query}", timeout=60) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        lines = resp.read().splitlines()
    assert (len(lines) == 200_000 and json.loads(lines[-1]) == {"number": "199999"}) or \
        json.loads(lines[-1]) == {"number": 199999}


class RecordingGateway(EngineGateway):
    """The real engine gateway, noting which queries the serving layer cancelled."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.cancelled: list[str] = []
        self.cancel_seen = threading.Event()

    def cancel(self, query_id: str) -> None:
        self.cancelled.append(query_id)
        self.cancel_seen.set()
        super().cancel(query_id)


def test_a_query_is_cancelled_when_its_client_hangs_up(running: Running, store) -> None:
    gateway = RecordingGateway(store.path)
    endpoint = serve_gateway(running.ctx, gateway, f"127.0.0.1:{free_port()}", timezone="UTC")
    try:
        request = (b"GET /?user=reader&password=pw&query_id=abandoned-1&query=SELECT+sleep(3) HTTP/1.1\r\n"
                   b"Host: x\r\n\r\n")
        with socket.create_connection(("127.0.0.1", endpoint.port), timeout=30) as conn:
            conn.sendall(request)
        assert gateway.cancel_seen.wait(30)
        assert gateway.cancelled == ["abandoned-1"]
        # the abandoned query's slot is given back once the engine work has stopped, not before and not never
        deadline = time.monotonic() + 30
        while endpoint.routes.group.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert endpoint.routes.group.running == 0
        # the endpoint still answers
        url = f"http://{endpoint.address}/?user=reader&password=pw&query=SELECT+1"
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.read() == b"1\n"
    finally:
        endpoint.stop(10)


def test_route_concurrency_caps_answer_retryable_refusals(running: Running) -> None:
    """OTLP past `serve.otlp_max_concurrent` gets 429, queries past `serve.query_max_concurrent` 503, both
    with Retry-After; the routes answer again once the running requests are done."""
    routes = running.http.routes
    release = threading.Event()
    writer = running.ctx.writer
    write = writer.write_fn

    def slow_write(rows):
        release.wait(60)
        return write(rows)

    writer.write_fn = slow_write
    routes.group.limit = 1
    held: list[tuple[int, dict, bytes]] = []
    sender = threading.Thread(target=lambda: held.append(post(running.http.port, logs_request(
        "otlp-cap", ["held"]).SerializeToString(), AUTH)))
    try:
        sender.start()
        deadline = time.monotonic() + 30
        while routes.group.running < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, headers, _ = post(running.http.port, logs_request("otlp-cap", ["refused"]).SerializeToString(), AUTH)
        assert status == 429 and int(headers["retry-after"]) >= 1
    finally:
        release.set()
        writer.write_fn = write
        sender.join(60)
    assert held and held[0][0] == 200

    query_routes = running.query.routes
    query_routes.group.limit = 1
    url = f"http://{running.query.address}/?user=reader&password=pw&query="
    slow = threading.Thread(target=lambda: urllib.request.urlopen(url + "SELECT+sleep(2)", timeout=60).read())
    slow.start()
    try:
        deadline = time.monotonic() + 30
        while query_routes.group.running < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "SELECT+1", timeout=30)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"
        assert refused.value.headers["X-ClickHouse-Exception-Code"] == "202"
    finally:
        slow.join(60)
    with urllib.request.urlopen(url + "SELECT+1", timeout=30) as resp:
        assert resp.read() == b"1\n"
    still_ingesting(running, "after-route-caps")


def test_no_secret_in_logs_at_debug_level(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    """Credentials in the URL, the Authorization header and the OTLP token never reach a log record."""
    import logging

    caplog.set_level(logging.DEBUG)
    url = f"http://{running.query.address}/?user=reader&password=pw-in-the-url&query=SELECT+1"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=30)
    with urllib.request.urlopen(f"http://{running.query.address}/?user=reader&password=pw&query=SELECT+1",
                                timeout=30) as resp:
        assert resp.read() == b"1\n"
    body = logs_request("log-secrets", ["x"]).SerializeToString()
    assert post(running.http.port, body, {"Authorization": "Bearer wrong-token-in-log"})[0] == 401
    assert post(running.http.port, body, AUTH)[0] == 200
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in ("pw-in-the-url", "password=pw", "wrong-token-in-log", TOKEN):
        assert secret not in text


def test_a_request_written_alone_is_deduplicated_by_the_store_too(running: Running) -> None:
    """A retry reaching a process that never saw the first attempt (its token memory empty) is dropped by the
    store's own insert deduplication when the first attempt was written on its own."""
    body = logs_request("retried-after-restart", ["only once"]).SerializeToString()
    assert post(running.http.port, body, AUTH)[0] == 200
    running.ctx.writer._recent.clear()  # what a restarted process remembers
    assert post(running.http.port, body, AUTH)[0] == 200
    count = running.ctx.store.scalar(
        f"SELECT count() FROM {running.db}.otel_logs WHERE ServiceName = 'retried-after-restart'")
    assert count == 1


def test_a_connection_serves_a_bounded_number_of_requests(running: Running) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", running.http.port, timeout=30)
    try:
        answers = []
        for _ in range(5):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            answers.append((response.status, (response.getheader("connection") or "").lower()))
        assert answers[:4] == [(200, "")] * 4 and answers[4] == (200, "close")
        assert conn.sock is None  # the client saw the close and dropped the socket
    finally:
        conn.close()
