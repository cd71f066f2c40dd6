"""The ClickHouse HTTP interface of a running `fleetwatch run`, read by real clients."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from email.message import Message

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.plugins.query_endpoint import REPO, SEED_SERVICES, RunningPipeline

pytestmark = pytest.mark.integration


def _http(running: RunningPipeline, query: str | None = None, body: bytes | None = None,
          headers: dict[str, str] | None = None, **params: str) -> tuple[int, Message, bytes]:
    if query is not None:
        params["query"] = query
    url = f"{running.url}/?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()  # names case-insensitive
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def client(running_pipeline: RunningPipeline):
    host, port = running_pipeline.address.split(":")
    c = clickhouse_connect.get_client(host=host, port=int(port), database=running_pipeline.database)
    yield c
    c.close()


def test_clickhouse_connect_gets_typed_rows(client) -> None:
    result = client.query(
        "SELECT service, count() AS n, max(value) AS top, max(ts) AS last FROM runtime_metrics "
        "WHERE metric = {m:String} GROUP BY service ORDER BY service",
        parameters={"m": "go.goroutine.count"},
    )
    assert result.column_names == ("service", "n", "top", "last")
    assert [r[0] for r in result.result_rows] == sorted(SEED_SERVICES)
    _, n, top, last = result.result_rows[0]
    assert n == 10 and isinstance(n, int)
    assert top == 190.0 and isinstance(top, float)
    assert isinstance(last, datetime)
    assert result.summary.get("read_rows") not in (None, "0")


def test_raw_formats_and_headers(running_pipeline: RunningPipeline) -> None:
    status, headers, body = _http(running_pipeline, "SELECT count() AS n FROM runtime_metrics FORMAT JSON")
    assert status == 200, body
    assert headers["X-ClickHouse-Format"] == "JSON"
    assert json.loads(body)["data"] == [{"n": "20"}] or json.loads(body)["data"] == [{"n": 20}]
    assert headers["X-ClickHouse-Query-Id"]
    assert headers["X-ClickHouse-Timezone"]
    assert "read_rows" in json.loads(headers["X-ClickHouse-Summary"])

    # query parameter + POST body are concatenated; default_format applies without a FORMAT clause
    status, headers, body = _http(
        running_pipeline, "SELECT service, count() AS n",
        body=b"FROM runtime_metrics GROUP BY service ORDER BY service",
        default_format="CSVWithNames",
    )
    assert status == 200, body
    assert headers["X-ClickHouse-Format"] == "CSVWithNames"
    assert body.decode().splitlines() == ['"service","n"', '"checkout",10', '"payments",10']

    status, headers, body = _http(running_pipeline, "SELECT {x:UInt8} + 1 AS y FORMAT JSONEachRow", param_x="41")
    assert (status, body) == (200, b'{"y":42}\n')

    status, headers, body = _http(
        running_pipeline, "SELECT number FROM numbers(1000) FORMAT TSV", enable_http_compression="1",
        headers={"Accept-Encoding": "gzip"},
    )
    assert headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(body).decode().splitlines()[-1] == "999"


def test_settings_as_parameters(running_pipeline: RunningPipeline) -> None:
    status, _, body = _http(running_pipeline, "SELECT getSetting('max_threads') AS t FORMAT TSV", max_threads="1")
    assert (status, body) == (200, b"1\n")
    status, headers, body = _http(running_pipeline, "SELECT 1", no_such_setting="1")
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "115"


def test_errors_have_clickhouse_shape(running_pipeline: RunningPipeline, client) -> None:
    status, headers, body = _http(running_pipeline, "SELECT * FROM no_such_table")
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception:")
    with pytest.raises(DatabaseError, match=r"UNKNOWN_TABLE|60"):
        client.query("SELECT * FROM no_such_table")
    status, _, body = _http(running_pipeline, "SELEC 1")
    assert status == 400 and body.startswith(b"Code: 62.")


def test_ping_and_root(running_pipeline: RunningPipeline) -> None:
    for path in ("/ping", "/"):
        with urllib.request.urlopen(running_pipeline.url + path, timeout=10) as response:
            assert response.read() == b"Ok.\n"


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO runtime_metrics (service) VALUES ('x')",
        "CREATE TABLE evil (a UInt8) ENGINE = Memory",
        "DROP TABLE runtime_metrics",
        "ALTER TABLE runtime_metrics DELETE WHERE 1",
        "TRUNCATE TABLE runtime_metrics",
        "SYSTEM DROP DNS CACHE",
        "KILL QUERY WHERE 1",
        "SET readonly = 0",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "select * from FiLe('/etc/hostname', 'LineAsString')",
        "SELECT file('/etc/hostname')",
        "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
        "SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv')",
        "SELECT * FROM remote('127.0.0.1:9', system.one)",
        "SELECT * FROM executable('ls', 'TSV', 'x String')",
        "SELECT * FROM mysql('127.0.0.1:9', 'db', 't', 'u', 'p')",
        "SELECT * FROM input('x String')",
        "SELECT count() FROM (SELECT * FROM (SELECT 1 FROM /* hide */ file('/etc/hostname', 'LineAsString')))",
        "SELECT 1 WHERE 1 IN (SELECT 1 FROM url('http://127.0.0.1:9/', 'LineAsString'))",
        "WITH (SELECT count() FROM file('/etc/hostname', 'LineAsString')) AS n SELECT n",
        "SELECT 1 UNION ALL SELECT 1 FROM file('/etc/hostname', 'LineAsString')",
        "SELECT 1 INTO OUTFILE '/tmp/fleetwatch-should-not-exist.txt'",
        "SELECT 1; DROP TABLE runtime_metrics",
        "-- comment\nINSERT INTO runtime_metrics (service) VALUES ('x')",
        "EXPLAIN SELECT * FROM file('/etc/hostname', 'LineAsString')",
    ],
)
def test_read_only_refuses_writes_and_outside_reads(running_pipeline: RunningPipeline, statement: str) -> None:
    for method_body in (None, b""):
        if method_body is None:
            status, headers, body = _http(running_pipeline, statement)
        else:
            status, headers, body = _http(running_pipeline, body=statement.encode())
        assert status in (400, 403), (statement, status, body)
        assert headers["X-ClickHouse-Exception-Code"] in ("62", "164", "497"), body
        assert b"DB::Exception" in body


def test_read_only_survives_setting_overrides(running_pipeline: RunningPipeline) -> None:
    status, headers, body = _http(
        running_pipeline, body=b"INSERT INTO runtime_metrics (service) VALUES ('x')", readonly="0",
    )
    assert status == 403 and headers["X-ClickHouse-Exception-Code"] == "164", body
    status, _, body = _http(running_pipeline, "SELECT 1 SETTINGS readonly = 0")
    assert status == 403, body
    status, _, body = _http(running_pipeline, "SELECT count() FROM runtime_metrics WHERE service = 'x' FORMAT TSV")
    assert (status, body) == (200, b"0\n")


def test_sql_command_reads_through_the_endpoint(running_pipeline: RunningPipeline) -> None:
    """`fleetwatch sql` on the held store path falls back to the running pipeline's endpoint."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "sql", "--clickhouse-dsn", running_pipeline.dsn,
         "--database", running_pipeline.database, "--query-http", running_pipeline.address, "--format", "csv",
         "SELECT service, count() AS n FROM runtime_metrics GROUP BY service ORDER BY service"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-2:] == ["checkout,10", "payments,10"], proc.stdout
