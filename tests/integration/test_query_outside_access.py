"""The read-only query endpoint cannot touch files or the network, whatever the statement or its settings.

Every attack goes as raw HTTP to the real endpoint over the session's embedded engine; each is checked for
its effect (a file unchanged, a secret absent from the answer, a listener that saw no connection), not only
for the status code.
"""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from pipeline.app import RunContext
from pipeline.serve.query import QueryEndpoint, serve_gateway
from pipeline.sink import BatchingWriter, Sink
from pipeline.store import reader_settings
from pipeline.store.query_engine import EngineGateway
from pipeline.telemetry import Telemetry
from tests.net import free_port

pytestmark = pytest.mark.integration

SECRET = "fw-secret-9c41d7"
# Setting names that suggest a path, a schema, a URL, a directory, a file or an inner query.
SUSPICIOUS = re.compile(r"path|schema|url|dir|file|query|template|format_regexp|registry|filter", re.IGNORECASE)


@pytest.fixture
def endpoint(store, settings) -> Iterator[QueryEndpoint]:
    telemetry = Telemetry()
    sink = Sink(store, telemetry)
    ctx = RunContext(settings, store, sink, BatchingWriter(sink), telemetry)
    running = serve_gateway(ctx, EngineGateway(store.path), f"127.0.0.1:{free_port()}", timezone="UTC")
    yield running
    running.stop(5)
    telemetry.shutdown()


def query(endpoint: QueryEndpoint, sql: str, **params: str) -> tuple[int, dict[str, str], bytes]:
    url = f"http://{endpoint.address}/?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()  # header names case-insensitive
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_every_path_schema_url_or_query_setting_is_refused(endpoint, store) -> None:
    names = [row[0] for row in store.rows("SELECT name FROM system.settings ORDER BY name")]
    suspicious = [name for name in names if SUSPICIOUS.search(name)]
    assert len(suspicious) > 100, "the engine's setting list no longer looks like ClickHouse's"
    assert not {n for n in suspicious if n in reader_settings.ALLOWED_SETTINGS}
    let_through = []
    for name in suspicious:
        for sql, params in (("SELECT 1", {name: "1"}), (f"SELECT 1 SETTINGS {name} = '1'", {})):
            status, headers, body = query(endpoint, sql, **params)
            if status == 200 or headers.get("X-ClickHouse-Exception-Code") not in ("452", "164", "115", "497"):
                let_through.append((name, sql, status, body[:200]))
    assert not let_through, let_through[:20]


def test_protobuf_schema_output_writes_nothing(endpoint, tmp_path) -> None:
    victim = tmp_path / "victim.sql"
    victim.write_text("ATTACH TABLE precious\n")
    attacks = [
        ("SELECT 1 AS x FORMAT Protobuf", {"output_format_schema": str(victim), "format_schema": "x:X"}),
        (f"SELECT 1 AS x FORMAT Protobuf SETTINGS output_format_schema = '{victim}'", {}),
        (f"SELECT 1 AS x SETTINGS output_format_schema = '{victim}' FORMAT ProtobufSingle", {}),
        (f"SELECT 1 AS x FORMAT CapnProto SETTINGS output_format_schema = '{victim}'", {}),
        ("SELECT 1 AS x FORMAT Protobuf", {"default_format": "Protobuf"}),
        ("SELECT 1 AS x", {"default_format": "Protobuf", "output_format_schema": str(victim)}),
        (f"SELECT * FROM (SELECT 1 AS x SETTINGS output_format_schema = '{victim}')", {}),
    ]
    for sql, params in attacks:
        status, _, body = query(endpoint, sql, **params)
        assert status in (400, 403), (sql, params, status, body[:200])
        assert victim.read_text() == "ATTACH TABLE precious\n", (sql, params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.sql"]


def test_schema_source_query_and_templates_leak_no_file(endpoint, tmp_path) -> None:
    secret = tmp_path / "environ"
    secret.write_text(f"FLEETWATCH_OTLP__TOKEN={SECRET}\n")
    inner = f"SELECT * FROM file('{secret}', 'LineAsString')"
    escaped = inner.replace("'", "\\'")
    attacks = [
        ("SELECT 1 AS x FORMAT Protobuf", {"format_schema_source": "query", "format_schema": inner}),
        (f"SELECT 1 AS x FORMAT Protobuf SETTINGS format_schema_source = 'query', format_schema = '{escaped}'", {}),
        ("SELECT 1 AS x FORMAT Protobuf", {"format_schema_source": "query",
                                          "format_schema": "SELECT * FROM file('/proc/self/environ', 'RawBLOB')"}),
        ("SELECT 1 FORMAT Template", {"format_template_resultset": str(secret)}),
        (f"SELECT 1 FORMAT Template SETTINGS format_template_resultset = '{secret}'", {}),
        ("SELECT 1 FORMAT Template SETTINGS format_template_resultset = '/etc/passwd'", {}),
        (f"SELECT 1 FORMAT Template SETTINGS format_template_row = '{secret}'", {}),
        (f"SELECT * FROM format(Template, '1') SETTINGS format_template_row = '{secret}'", {}),
        (f"SELECT formatRow('Template', 1) SETTINGS format_template_row = '{secret}'", {}),
        ("SELECT formatRow('Template', 1)", {}),
        (f"SELECT * FROM format(CustomSeparated, '1') SETTINGS format_custom_result_before_delimiter = '{secret}'",
         {}),
        ("SELECT * FROM format(Regexp, 'a')", {"format_regexp": "(.*)"}),
        ("SELECT * FROM merge(system, '^processes$')", {}),
        ("SELECT query FROM system.processes", {}),
        ("SELECT * FROM system.query_log", {}),
        ("SELECT * FROM system.errors", {}),
        ("SELECT * FROM system.disks", {}),
        ("SELECT data_paths FROM system.tables", {}),
        ("SELECT * FROM system.tables", {}),
        ("SELECT t.* FROM system.databases AS t", {}),
        ("SELECT COLUMNS('path') FROM system.tables", {}),
        ("SHOW PROCESSLIST", {}),
        ("SELECT * FROM processes", {"database": "system"}),
        ("SELECT catboostEvaluate('/etc/passwd', 1)", {}),
        ("SELECT getServerSetting('path')", {}),
        ("SELECT value FROM system.server_settings WHERE name = 'path'", {}),
        ("SELECT * FROM system.build_options", {}),
        ("SELECT query FROM {t:Identifier}", {"param_t": "system.processes"}),
    ]
    let_through = []
    for sql, params in attacks:
        status, _, body = query(endpoint, sql, **params)
        if status == 200 or SECRET.encode() in body or b"root:" in body or not body.startswith(b"Code: "):
            let_through.append((sql, params, status, body[:300]))
    assert not let_through, let_through


def test_url_and_inner_queries_make_no_network_call(endpoint) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    attacks = [
        (f"SELECT * FROM url('{url}', 'LineAsString')", {}),
        ("SELECT 1 AS x FORMAT Protobuf", {"format_schema_source": "query",
                                          "format_schema": f"SELECT * FROM url('{url}', 'RawBLOB')"}),
        ("SELECT 1 AS x FORMAT AvroConfluent", {"format_avro_schema_registry_url": url}),
        ("SELECT 1", {"additional_result_filter": f"(SELECT count() FROM url('{url}', 'RawBLOB')) = 0"}),
        (f"SELECT 1 SETTINGS url_base = '{url}'", {}),
    ]
    try:
        for sql, params in attacks:
            status, _, body = query(endpoint, sql, **params)
            assert status in (400, 403), (sql, status, body[:200])
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


def test_ordinary_reads_and_client_settings_still_work(endpoint, store) -> None:
    assert query(endpoint, "SELECT count() FROM numbers(10) SETTINGS max_threads = 1")[2] == b"10\n"
    status, _, body = query(endpoint, "SELECT timezone() AS tz, toDateTime(0) AS t FORMAT JSONEachRow",
                            session_timezone="Asia/Tokyo", date_time_output_format="iso",
                            output_format_json_quote_64bit_integers="1", max_block_size="1000",
                            output_format_json_escape_forward_slashes="0")
    assert (status, body) == (200, b'{"tz":"Asia/Tokyo","t":"1970-01-01T00:00:00Z"}\n'), body
    status, _, body = query(endpoint, "SELECT name FROM system.tables WHERE database = currentDatabase() "
                                      "AND name = 'gc_events' FORMAT TSV")
    assert (status, body) == (200, b"gc_events\n"), body
    status, _, body = query(endpoint, "SHOW TABLES LIKE 'gc_events'")
    assert (status, body) == (200, b"gc_events\n"), body
    status, _, body = query(endpoint, "SELECT count() FROM merge(currentDatabase(), '^gc_events$') FORMAT CSV")
    assert (status, body) == (200, b"0\n"), body
    status, _, body = query(endpoint, "SELECT count() FROM merge(REGEXP('^sys'), '^one$')")
    assert status == 403, body
    status, _, body = query(endpoint, "SELECT sum(number) FROM numbers(4) FORMAT CSV")
    assert (status, body) == (200, b"6\n"), body
