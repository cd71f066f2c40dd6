"""Reader limits on a real `fleetwatch run`: memory, time, result size, concurrency, cancellation, shutdown.

One process with small limits serves every test here; each attack goes through the query endpoint (raw
HTTP for attacks, clickhouse-connect where a client is involved) and the process must keep answering.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.integration.test_faults_otlp import logs_request
from tests.process import FleetwatchProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

LIMITS = {
    "FLEETWATCH_QUERY__MAX_MEMORY_USAGE": str(300 << 20),
    "FLEETWATCH_QUERY__MAX_EXECUTION_TIME": "4",
    "FLEETWATCH_QUERY__MAX_RESULT_ROWS": "2000000",
    "FLEETWATCH_QUERY__MAX_THREADS": "2",
    "FLEETWATCH_QUERY__MAX_CONCURRENT_QUERIES": "4",
    "FLEETWATCH_QUERY__PASSWORD": "reader-pw-7f3a",
    "FLEETWATCH_LOG_LEVEL": "DEBUG",
}
PASSWORD = LIMITS["FLEETWATCH_QUERY__PASSWORD"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetwatchProcess]:
    proc = FleetwatchProcess(tmp_path_factory.mktemp("limits"), LIMITS, query=True).start()
    yield proc
    if proc.alive():
        proc.terminate()


def get(proc: FleetwatchProcess, sql: str, timeout: float = 60, **params: str) -> tuple[int, dict[str, str], bytes]:
    query = urllib.parse.urlencode({"query": sql, "user": "default", "password": PASSWORD, **params})
    try:
        with urllib.request.urlopen(f"{proc.query_url}/?{query}", timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()  # header names case-insensitive
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def still_serving(proc: FleetwatchProcess) -> None:
    assert get(proc, "SELECT 1")[2] == b"1\n"
    body = logs_request("limits", ["still ingesting"]).SerializeToString()
    req = urllib.request.Request(f"{proc.http_url}/v1/logs", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def test_memory_bomb_is_refused_and_the_process_stays_small(fleet) -> None:
    before = vm_kib(fleet.proc.pid, "VmRSS")
    status, headers, body = get(fleet, "SELECT groupArray(number) FROM numbers(2000000000)")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "241", body[:300]
    assert b"memory limit" in body.lower()
    grown = vm_kib(fleet.proc.pid, "VmRSS") - before
    assert grown < 600 * 1024, f"RSS grew by {grown} KiB"
    still_serving(fleet)


def test_time_bomb_is_stopped_and_readers_cannot_lift_the_limits(fleet) -> None:
    started = time.monotonic()
    status, headers, body = get(fleet, "SELECT count() FROM numbers(1000000000000)", max_execution_time="3600")
    assert status in (500, 504) and headers["X-ClickHouse-Exception-Code"] == "159", body[:300]
    assert time.monotonic() - started < 30
    # URL values above a cap are lowered to it; SETTINGS clauses above it are refused; the sleep cap is fixed
    status, _, body = get(fleet, "SELECT getSetting('max_execution_time'), getSetting('max_threads'), "
                                 "getSetting('max_memory_usage') FORMAT TSV",
                          max_execution_time="0", max_threads="64", max_memory_usage="0")
    assert (status, body) == (200, f"4\t2\t{300 << 20}\n".encode()), body
    for sql, params in [
        ("SELECT 1 SETTINGS max_execution_time = 0", {}),
        ("SELECT 1 SETTINGS max_memory_usage = 100000000000", {}),
        ("SELECT 1 SETTINGS max_result_rows = 0", {}),
        ("SELECT * FROM (SELECT 1 SETTINGS max_threads = 64)", {}),
        ("SELECT sleep(3)", {"function_sleep_max_microseconds_per_block": "0"}),
        ("SELECT sleep(3) SETTINGS function_sleep_max_microseconds_per_block = 0", {}),
        ("SELECT 1", {"timeout_overflow_mode": "nonsense"}),
        ("SELECT 1", {"max_concurrent_queries_for_user": "0"}),
        ("SELECT 1", {"readonly": "0"}),
    ]:
        status, headers, body = get(fleet, sql, **params)
        assert status in (400, 403), (sql, params, status, body[:300])
        assert headers["X-ClickHouse-Exception-Code"] in ("452", "164"), (sql, body[:300])
    assert get(fleet, "SELECT sleep(1)")[0] == 200  # sleeping within the fixed cap still works


def test_huge_results_are_limited_and_large_ones_stream(fleet) -> None:
    # caught before anything was sent: a proper error status (here with a limit the reader lowered)
    status, headers, body = get(fleet, "SELECT number FROM numbers(1000000000)", max_result_rows="1000")
    assert status == 413 and headers["X-ClickHouse-Exception-Code"] == "396", body[:300]
    # caught mid-stream: the output stops at the limit and ends with the error, as a ClickHouse server's does
    status, headers, body = get(fleet, "SELECT number FROM numbers(1000000000)")
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked"
    tail = body[-400:]
    assert b"Code: 396." in tail and b"TOO_MANY_ROWS_OR_BYTES" in tail, tail
    assert body.count(b"\n") <= 2_000_000 + 2
    # a result past the prefetch size comes chunked, block by block, and whole
    conn = http.client.HTTPConnection("127.0.0.1", fleet.query_port, timeout=60)
    query = urllib.parse.urlencode({"query": "SELECT number, repeat('x', 40) FROM numbers(1500000) FORMAT TSV",
                                    "user": "default", "password": PASSWORD})
    conn.request("GET", f"/?{query}")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    lines = 0
    last = b""
    while chunk := resp.read(1 << 20):
        lines += chunk.count(b"\n")
        last = (last + chunk)[-100:]
    conn.close()
    assert lines == 1_500_000 and last.endswith(b"1499999\t" + b"x" * 40 + b"\n")
    # result bytes, which the engine itself does not count on its output: before anything is sent...
    status, headers, body = get(fleet, "SELECT number, repeat('x', 100) FROM numbers(1000000)",
                                max_result_bytes="100000")
    assert status == 413 and headers["X-ClickHouse-Exception-Code"] == "396", body[:300]
    # ...and mid-stream, with the output cut within a block (~7 MB here) of the limit
    status, headers, body = get(fleet, "SELECT number, repeat('x', 100) FROM numbers(1000000)",
                                max_result_bytes="20000000")
    assert status == 200 and b"Code: 396." in body[-400:], body[-400:]
    assert len(body) < 40_000_000
    # a document format is produced whole, within the query's memory limit (which counts its output)
    status, headers, body = get(fleet, "SELECT number, repeat('x', 1000) FROM numbers(1000000) FORMAT JSON")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "241", body[:300]
    # CSVWithNames streamed keeps one header only
    status, _, body = get(fleet, "SELECT number AS n FROM numbers(200000) FORMAT CSVWithNames")
    assert status == 200 and body.count(b'"n"') == 1 and body.count(b"\n") == 200_001


def test_a_thousand_concurrent_queries_get_503_beyond_the_cap(fleet) -> None:
    def one(_: int) -> tuple[int, str | None]:
        status, headers, _ = get(fleet, "SELECT sleep(0.5)")
        return status, headers.get("Retry-After")

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(1000)))
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= 4 and statuses[503] > 0, statuses
    assert all(retry == "1" for status, retry in answers if status == 503)
    still_serving(fleet)


def _running(proc: FleetwatchProcess, query_id: str, password: str | None = PASSWORD) -> bool:
    """A query with this id is running: the endpoint refuses another one with the same id."""
    params = urllib.parse.urlencode({"query": "SELECT 1", "query_id": query_id,
                                     **({"user": "default", "password": password} if password else {})})
    try:
        urllib.request.urlopen(f"{proc.query_url}/?{params}", timeout=10).read()
    except urllib.error.HTTPError as err:
        return err.headers.get("X-ClickHouse-Exception-Code") == "216"
    return False


def hang_up_cancels(proc: FleetwatchProcess, password: str | None = None) -> float:
    """Start an endless query over a raw connection, hang up once it runs: seconds until it has stopped."""
    query_id = f"hangup-{uuid.uuid4()}"
    auth = {"user": "default", "password": password} if password else {}
    query = urllib.parse.urlencode({"query": "SELECT count() FROM numbers(1000000000000)", "query_id": query_id,
                                    **auth})
    request = f"GET /?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    client = socket.create_connection(("127.0.0.1", proc.query_port), timeout=30)
    client.sendall(request)

    def started() -> bool:
        nonlocal client
        if _running(proc, query_id, password):
            return True
        if select.select([client], [], [], 0)[0]:  # answered already: the probe took the id first; again
            client.close()
            client = socket.create_connection(("127.0.0.1", proc.query_port), timeout=30)
            client.sendall(request)
        return False

    wait_for(started, interval=0.05)
    hung_up = time.monotonic()
    client.close()
    wait_for(lambda: not _running(proc, query_id, password), interval=0.05)
    return time.monotonic() - hung_up


def test_clickhouse_connect_and_grafana_style_settings_work(fleet) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=fleet.query_port, password=PASSWORD)
    try:
        result = client.query("SELECT {n:UInt32} + 1 AS x, toDateTime(0, 'UTC') AS t", parameters={"n": 41})
        assert result.result_rows[0][0] == 42
        assert json.loads(json.dumps(result.summary)).get("result_rows") == "1"
        assert client.command("SELECT 5") == 5
        # a result past the prefetch size: streamed Native, compressed as the client asks (lz4 by default)
        big = client.query("SELECT number, toString(number) AS s FROM numbers(1500000)")
        assert big.row_count == 1_500_000 and big.result_rows[-1] == (1_499_999, "1499999")
        assert client.query("SELECT number AS n FROM numbers(10) WHERE number > 100").row_count == 0
        for compress in ("gzip", "zstd", "lz4", False):
            other = clickhouse_connect.get_client(host="127.0.0.1", port=fleet.query_port, password=PASSWORD,
                                                  compress=compress)
            try:
                assert other.query("SELECT sum(number) FROM numbers(10)").result_rows == [(45,)]
                assert other.query("SELECT number FROM numbers(400000)").row_count == 400_000, compress
            finally:
                other.close()
        # what Grafana's ClickHouse data source sends with a query (its timeout as max_execution_time)
        grafana = client.query("SELECT number FROM numbers(3)", settings={
            "max_execution_time": 65, "max_threads": 8, "max_memory_usage": 0, "session_timezone": "UTC",
            "date_time_output_format": "simple", "max_block_size": 1000,
        })
        assert [r[0] for r in grafana.result_rows] == [0, 1, 2]
        with pytest.raises(DatabaseError, match=r"452|SETTING_CONSTRAINT"):
            client.query("SELECT 1", settings={"format_schema": "/etc/passwd"})
    finally:
        client.close()


def test_summary_counts_rows_and_errors_quote_the_users_query(fleet) -> None:
    status, headers, _ = get(fleet, "SELECT number FROM numbers(1000) WHERE number % 2 = 0")
    summary = json.loads(headers["X-ClickHouse-Summary"])
    assert status == 200 and summary["result_rows"] == "500" and summary["read_rows"] == "1000", summary
    status, _, body = get(fleet, "SELEC 1 FROM numbers(3)")
    assert status == 400 and b"formatQuerySingleLine" not in body and b"In scope" not in body, body
    assert b"failed at position 7 (1): 1 FROM numbers(3)." in body, body  # positions in the reader's own text


def test_summary_of_large_and_streamed_results_as_clickhouse_connect_reads_it(fleet) -> None:
    """X-ClickHouse-Summary as a ClickHouse server sends it (docs/reliability.md): exact when the client waits
    for the end (clickhouse-connect's query()), progress up to the first `buffer_size` bytes when it streams,
    exact again when the stream's `buffer_size` holds the whole result."""
    n = 1_500_000  # 12 MB of Native UInt64: far past the default 1 MiB buffer
    sql = f"SELECT number FROM numbers({n})"
    client = clickhouse_connect.get_client(host="127.0.0.1", port=fleet.query_port, password=PASSWORD,
                                           compress=False)
    try:
        whole = client.query(sql)
        assert whole.row_count == n
        # result rows are counted from the blocks sent; read rows are the engine's progress when the last block
        # left it, which may trail the scan's end under load (tests/integration/test_query_gateway.py)
        assert whole.summary["result_rows"] == str(n), whole.summary
        assert 0 < int(whole.summary["read_rows"]) <= n, whole.summary

        def streamed(**settings: int) -> tuple[int, dict[str, str]]:
            with client.query_row_block_stream(sql, settings=settings) as stream:
                rows = sum(len(block) for block in stream)
                return rows, dict(stream.source.summary)

        rows, summary = streamed()
        assert rows == n
        # what the engine had produced when the headers left: at least the first MiB, not the whole result
        assert (1 << 20) // 8 <= int(summary["result_rows"]) < n, summary
        assert int(summary["read_rows"]) > 0 and summary["total_rows_to_read"] == "0"
        rows, summary = streamed(buffer_size=64 << 20)  # a buffer that holds it all: the whole result's figures
        assert rows == n and summary["result_rows"] == str(n) and 0 < int(summary["read_rows"]) <= n, summary
        assert summary["total_rows_to_read"] != "0", summary
    finally:
        client.close()


def test_no_secret_in_logs_at_debug(fleet) -> None:
    get(fleet, "SELECT 1")  # the password travels in the URL, as clickhouse-connect's GETs do
    log = fleet.log()
    assert "GET /?" in log and "password=***" in log, log[-2000:]  # the request line is logged at DEBUG...
    assert PASSWORD not in log  # ...without the password


def test_hang_up_and_sigterm_during_long_queries(tmp_path) -> None:
    """A hung-up reader's query is cancelled; SIGTERM during a query exits 0 and keeps what was ingested."""
    proc = FleetwatchProcess(tmp_path, {"FLEETWATCH_QUERY__MAX_EXECUTION_TIME": "120"}, query=True).start()
    try:
        body = logs_request("sigterm", ["kept line"]).SerializeToString()
        req = urllib.request.Request(f"{proc.http_url}/v1/logs", data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
        # a reader that hangs up has its query cancelled (the cap here is 120 s)
        assert hang_up_cancels(proc, None) < 10
        query_id = f"long-{uuid.uuid4()}"
        answers: list[tuple[int, bytes]] = []

        def long_query() -> None:
            params = urllib.parse.urlencode({"query": "SELECT count() FROM numbers(1000000000000)",
                                             "query_id": query_id})
            for _ in range(100):  # again while a probe below holds the id (it runs for milliseconds)
                try:
                    with urllib.request.urlopen(f"{proc.query_url}/?{params}", timeout=120) as resp:
                        answers.append((resp.status, resp.read()))
                except urllib.error.HTTPError as err:
                    if err.headers.get("X-ClickHouse-Exception-Code") == "216":
                        continue
                    answers.append((err.code, err.read()))
                except OSError as err:
                    answers.append((0, str(err).encode()))
                return

        reader = threading.Thread(target=long_query)
        reader.start()

        wait_for(lambda: _running(proc, query_id, None) or bool(answers), interval=0.05)
        assert not answers, answers
        assert proc.terminate(timeout=60) == 0, proc.log()[-3000:]
        reader.join(30)
        assert answers and answers[0][0] != 200, answers  # the reader was told its query stopped
        rows = proc.sql("SELECT Body FROM fleetwatch.otel_logs WHERE ServiceName = 'sigterm'")
        assert rows == [{"Body": "kept line"}]
    finally:
        proc.kill()  # a no-op once it has exited
