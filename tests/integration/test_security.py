"""Untrusted clients: bearer tokens on OTLP, the read-only query endpoint against bypass attempts, service
names full of quotes and SQL metacharacters stored verbatim and read back through parameterized queries.

Everything runs in this process on the session's embedded store: the receivers and the query endpoint are the
real components, started the way `fleetwatch run` starts them.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from pydantic import SecretStr

from pipeline.app import RunContext
from pipeline.health import Health
from pipeline.report.triage import build_report
from pipeline.serve import otlp as otlp_http
from pipeline.serve import otlp_grpc
from pipeline.serve.query import QueryEndpoint, serve_gateway
from pipeline.sink import BatchingWriter, Sink
from pipeline.store.query_engine import EngineGateway, escape_param
from pipeline.telemetry import Telemetry
from tests.integration.test_faults_otlp import logs_request
from tests.net import free_port

pytestmark = pytest.mark.integration

TOKEN = "t0ken-for-tests"
GC_LINE = ("gc 3 @1.500s 2%: 0.015+0.51+0.003 ms clock, 0.12+0.20/0.41/0.10+0.024 ms cpu, 4->4->1 MB, 5 MB goal, "
           "0 MB stacks, 0 MB globals, 8 P")
EVIL_NAMES = [
    "svc'); DROP TABLE otel_logs; --",
    'quote"double',
    "back\\slash\\'",
    "{s:String}",
    "tab\tnew\nline",
    "`backtick`",
    "ünïcødé ✓",
    "%s %(x)s {0}",
    "' OR 1=1 --",
]


@pytest.fixture
def pipeline(settings, store):
    """OTLP receivers with a token, and the read-only query endpoint, over the test's database."""
    settings.otlp.http = f"127.0.0.1:{free_port()}"
    settings.otlp.grpc = f"127.0.0.1:{free_port()}"
    settings.otlp.token = SecretStr(TOKEN)
    settings.query.user, settings.query.password = "reader", SecretStr("pw")
    telemetry = Telemetry()
    sink = Sink(store, telemetry)
    writer = BatchingWriter(sink, max_delay=0.01).start()
    health = Health(store, interval=0.5)
    health.migrated.set()
    ctx = RunContext(settings, store, sink, writer, telemetry, health=health.start())
    http, grpc_receiver = otlp_http.start(ctx), otlp_grpc.start(ctx)
    query = serve_gateway(ctx, EngineGateway(store.path), f"127.0.0.1:{free_port()}", timezone="UTC")
    health.started.set()
    yield ctx, http, query
    query.stop(5)
    grpc_receiver.stop(5)
    http.stop(5)
    writer.stop()
    health.stop()
    telemetry.shutdown()


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/logs", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def query(endpoint: QueryEndpoint, sql: str, **params: str) -> tuple[int, bytes]:
    url = f"http://{endpoint.address}/?" + urllib.parse.urlencode({"user": "reader", "password": "pw", **params})
    req = urllib.request.Request(url, data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_otlp_bearer_token_is_required_on_both_transports(pipeline, store, settings) -> None:
    ctx, http, _ = pipeline
    body = logs_request("auth", ["one record"]).SerializeToString()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}):
        assert post(http.port, body, headers)[0] == 401, headers
    with grpc.insecure_channel(ctx.settings.otlp.grpc) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        for metadata in ([], [("authorization", "Bearer wrong")]):
            with pytest.raises(grpc.RpcError) as denied:
                stub.Export(logs_request("auth", ["x"]), timeout=30, metadata=metadata)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(logs_request("auth", ["grpc ok"]), timeout=30, metadata=[("authorization", f"Bearer {TOKEN}")])
    assert post(http.port, body, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    bodies = store.rows(f"SELECT Body FROM {settings.database}.otel_logs WHERE ServiceName = 'auth' ORDER BY Body")
    assert bodies == [("grpc ok",), ("one record",)]  # nothing refused was stored


def test_health_endpoints_on_both_ports(pipeline) -> None:
    _, http, endpoint = pipeline
    for base in (f"http://127.0.0.1:{http.port}", f"http://{endpoint.address}"):
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as resp:
            assert json.loads(resp.read()) == {"status": "alive"}
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as resp:  # no credentials needed
            assert json.loads(resp.read()) == {"status": "ready", "checks": {
                "store": "ok", "migrations": "ok", "components": "ok"}}


SECRET_FILE_TEXT = "fw-secret-3b8e1d"
# {f} is a file holding SECRET_FILE_TEXT; {q} is the same path quoted for use inside a quoted string.
BYPASSES = [
    # settings whose values are SQL: a row filter that reads a file and returns it in the error message
    ("SELECT * FROM system.one", {"additional_table_filters":
                                  "{{'system.one': 'throwIf(1, (SELECT any(line) FROM file({q}, "
                                  "\\'LineAsString\\'))) = 0'}}"}),
    ("SELECT * FROM system.one", {"additional_result_filter":
                                  "throwIf(1, (SELECT any(line) FROM file({f}, 'LineAsString'))) = 0"}),
    ("SELECT * FROM system.one SETTINGS additional_result_filter = "
     "'throwIf(1, (SELECT any(line) FROM file({q}, \\'LineAsString\\'))) = 0'", {}),
    ("SELECT * FROM system.one SETTINGS `additional_table_filters` = {{'system.one': '1'}}", {}),
    ("SELECT 1", {"dialect": "kusto"}),
    # table functions hidden in views, loops, joins, other spellings
    ("SELECT * FROM view(SELECT * FROM file({f}, 'LineAsString'))", {}),
    ("SELECT * FROM viewIfPermitted(SELECT * FROM file({f}, 'LineAsString') ELSE null('x String'))", {}),
    ("SELECT * FROM loop(file({f}, 'LineAsString')) LIMIT 1", {}),
    ("SELECT * FROM (SELECT 1) AS a JOIN URL('http://127.0.0.1:9/', LineAsString) AS b ON 1", {}),
    ("SELECT * FROM (SELECT 1) AS a JOIN file({f}, 'LineAsString') AS b ON 1", {}),
    ("SELECT (SELECT any(line) FROM FILE({f}, 'LineAsString'))", {}),
    ("SELECT * FROM deltaLakeLocal('/etc')", {}),
    ("SELECT * FROM icebergLocal('/etc')", {}),
    ("SELECT * FROM sqlite({f}, 't')", {}),
    ("SELECT * FROM fileCluster('default', {f})", {}),
    ("SELECT * FROM s3Cluster('default', 'http://127.0.0.1:9/x')", {}),
    ("SELECT * FROM remoteSecure('127.0.0.1:9', system.one)", {}),
    ("SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')", {}),
    ("SELECT * FROM dictionary('d')", {}),
    ("DESCRIBE TABLE file({f}, 'LineAsString')", {}),
    ("EXPLAIN PIPELINE SELECT * FROM file({f}, 'LineAsString')", {}),
    # writes and side effects
    ("BACKUP TABLE otel_logs TO File('/tmp/fw-backup')", {}),
    ("SELECT 1 FORMAT Native INTO OUTFILE '/tmp/fw-outfile'", {}),
    ("INSERT INTO otel_logs (Body) SELECT 'x'", {"readonly": "0"}),
    ("CREATE TABLE x ENGINE = Memory AS SELECT 1", {"allow_ddl": "1"}),
    ("SELECT 1", {"readonly": "0"}),
    ("SET readonly = 0", {}),
]


def test_read_only_endpoint_refuses_bypasses(pipeline, tmp_path) -> None:
    _, _, endpoint = pipeline
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_FILE_TEXT + "\n")
    f, q = f"'{secret}'", f"\\'{secret}\\'"
    let_through = []
    for sql, settings_params in BYPASSES:
        sql = sql.format(f=f, q=q)
        params = {k: v.format(f=f, q=q) for k, v in settings_params.items()}
        status, body = query(endpoint, sql, **params)
        if status not in (400, 403, 404, 500) or not body.startswith(b"Code: ") or SECRET_FILE_TEXT.encode() in body:
            let_through.append((sql, params, status, body[:300]))
    assert not let_through, let_through
    assert not any(p.exists() for p in (Path("/tmp/fw-backup"), Path("/tmp/fw-outfile")))
    # the same file is readable by the engine itself: the refusals above are the guard, not a missing file
    status, body = query(endpoint, "SELECT 1")
    assert status == 200


def test_read_only_endpoint_still_answers_ordinary_reads(pipeline) -> None:
    _, _, endpoint = pipeline
    assert query(endpoint, "SELECT count() FROM numbers(10) SETTINGS max_threads = 1") == (200, b"10\n")
    assert query(endpoint, "SELECT {n:UInt8} + 1", param_n="41") == (200, b"42\n")
    assert query(endpoint, "SELECT 'additional_table_filters = 1'") == (200, b"additional_table_filters = 1\n")


def test_service_names_with_sql_metacharacters_are_stored_verbatim(pipeline, store, settings) -> None:
    _, http, endpoint = pipeline
    for name in EVIL_NAMES:
        body = logs_request(name, [GC_LINE, f"plain line of {name}"]).SerializeToString()
        assert post(http.port, body, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, name
    db = settings.database
    # verbatim in both tables, read back through engine parameters
    assert sorted(r[0] for r in store.rows(f"SELECT DISTINCT service FROM {db}.gc_events")) == sorted(EVIL_NAMES)
    for name in EVIL_NAMES:
        # ClickHouse reads HTTP parameter values in its escaped text form; clients escape them (as here)
        status, out = query(endpoint, "SELECT count() FROM gc_events WHERE service = {s:String}",
                            param_s=escape_param(name))
        assert (status, out) == (200, b"1\n"), name
        status, out = query(endpoint, "SELECT Body FROM otel_logs WHERE ServiceName = {s:String} FORMAT JSONEachRow",
                            param_s=escape_param(name))
        assert status == 200 and json.loads(out) == {"Body": f"plain line of {name}"}, (name, out)
    # the tables are all still there, and the triage report (parameterized) runs for each name
    assert store.scalar(f"SELECT count() FROM {db}.otel_logs") == len(EVIL_NAMES)
    for name in EVIL_NAMES:
        report = build_report(store, settings, service=name, since=datetime.now(UTC) - timedelta(hours=1))
        assert report.scope == f"service {name}"


def test_oversize_bomb_and_garbage_bodies_get_clear_errors(pipeline, store, settings) -> None:
    import gzip

    import zstandard

    ctx, http, _ = pipeline
    auth = {"Authorization": f"Bearer {TOKEN}"}
    limit = ctx.settings.otlp.max_request_bytes
    cases = [
        (b"\0" * (limit + 1), {}, 413),
        (gzip.compress(b"\0" * (limit * 4)), {"Content-Encoding": "gzip"}, 413),  # a compression bomb
        (zstandard.ZstdCompressor().compress(b"\0" * (limit * 4)), {"Content-Encoding": "zstd"}, 413),
        (b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip"}, 400),
        (b"\xff\xfe not protobuf \x00\x01", {}, 400),
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "\xff\xfe"}}]}]}]}',
         {"Content-Type": "application/json"}, 400),  # invalid UTF-8 in JSON
        (b"x", {"Content-Encoding": "br"}, 400),
        (b"x", {"Content-Type": "text/plain"}, 415),
    ]
    for body, headers, expected in cases:
        started = time.monotonic()
        status, answer = post(http.port, body, {**auth, **headers})
        assert status == expected, (headers, status, answer[:200])
        assert answer, "an error must say why"
        assert time.monotonic() - started < 60
    # a protobuf string that is not UTF-8 is refused as undecodable, not stored half-way
    bad_utf8 = logs_request("utf8", ["PLACEHOLDER"]).SerializeToString().replace(b"PLACEHOLDER", b"\xff\xfe\xfd\xfc\xfb"
                                                                                  b"\xfa\xf9\xf8\xf7\xf6\xf5")
    assert post(http.port, bad_utf8, auth)[0] == 400
    # huge attribute maps are stored whole
    request = logs_request("wide", ["many attributes"])
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    for i in range(20_000):
        record.attributes.add(key=f"k{i}").value.string_value = "v" * 20
    assert post(http.port, request.SerializeToString(), auth)[0] == 200
    db = settings.database
    assert store.scalar(f"SELECT length(LogAttributes) FROM {db}.otel_logs WHERE ServiceName = 'wide'") == 20_000
    assert store.scalar(f"SELECT count() FROM {db}.otel_logs WHERE ServiceName = 'utf8'") == 0


def raw_http(port: int, request: bytes) -> bytes:
    """Send raw bytes, read the answer until the server closes the connection (bounded by the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        answer = b""
        for _ in range(1000):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


SIGNED_IN = b"POST /?user=reader&password=pw HTTP/1.1\r\nHost: x\r\n"


def test_query_endpoint_bodies_are_bounded(pipeline) -> None:
    import gzip

    _, http, endpoint = pipeline
    port = int(endpoint.address.rsplit(":", 1)[1])
    bomb = gzip.compress(b"S" * (pipeline[0].settings.serve.max_query_bytes + 1024))  # a few KiB on the wire
    cases = [
        (SIGNED_IN + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb,
         b" 413 "),
        (SIGNED_IN + b"Content-Length: 1000000000000\r\n\r\n", b" 413 "),
        # no credentials: refused from the headers, before the (huge) body is read
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n", b" 401 "),
        (SIGNED_IN + b"Content-Length: nope\r\n\r\n", b" 400 "),
        (SIGNED_IN + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", b" 400 "),
        (SIGNED_IN + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n", b" 400 "),
        (SIGNED_IN + b"Content-Encoding: zstd\r\nContent-Length: 4\r\n\r\nabcd", b" 400 "),
    ]
    for request, status in cases:
        answer = raw_http(port, request)
        assert answer.split(b"\r\n", 1)[0].endswith(status.strip()) or status in answer.split(b"\r\n", 1)[0], \
            (request[:80], answer[:300])
        assert b"Code: " in answer
    # the OTLP receiver refuses a negative chunk size instead of reading to the end of the connection
    answer = raw_http(http.port, b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n-1\r\n")
    assert b" 400 " in answer.split(b"\r\n", 1)[0], answer[:300]
    assert query(endpoint, "SELECT 1") == (200, b"1\n")  # still serving
