"""The engine side of the query endpoint as the HTTP layer uses it: execute, stream, cancel, close."""

from __future__ import annotations

import json
import threading
import time

import chdb
import pytest

from pipeline.store.query_engine import HEADER_LINES, STREAMED_FORMATS, EngineGateway, QueryFailure, QueryRequest
from pipeline.store.reader_settings import ReaderLimits
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

ENDLESS = "SELECT count() FROM numbers(1000000000000)"


def run_in_thread(gateway: EngineGateway, request: QueryRequest) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def go() -> None:
        try:
            result = gateway.execute(request)
            out.append(b"".join(result.chunks()))
        except QueryFailure as failure:
            out.append(failure)

    thread = threading.Thread(target=go)
    thread.start()
    return thread, out


def test_results_stream_with_headers_and_a_summary(store) -> None:
    gateway = EngineGateway(store.path)
    result = gateway.execute(QueryRequest("SELECT number FROM numbers(300000) WHERE number % 3 = 0 FORMAT TSV",
                                          store.database, query_id="q-stream"))
    assert result.headers["X-ClickHouse-Format"] == "TSV" and result.headers["X-ClickHouse-Query-Id"] == "q-stream"
    assert result.content_type.startswith("text/tab-separated-values")
    chunks = list(result.chunks())
    assert len(chunks) > 1  # block by block, not one buffer
    assert b"".join(chunks).count(b"\n") == 100_000
    summary = result.summary()
    # result rows are counted from the blocks handed over; read rows are the engine's progress when the last
    # block left it (as a ClickHouse server's header is), so under load they may trail the scan's end
    assert summary["result_rows"] == "100000", json.dumps(summary)
    assert 100_000 <= int(summary["read_rows"]) <= 300_000, json.dumps(summary)
    assert gateway.running_count() == 0


def test_cancel_stops_a_running_query(store) -> None:
    gateway = EngineGateway(store.path)
    thread, out = run_in_thread(gateway, QueryRequest(ENDLESS, store.database, query_id="q-cancel"))
    wait_for(lambda: gateway.executing("q-cancel"), interval=0.02)
    started = time.monotonic()
    gateway.cancel("q-cancel")
    thread.join(30)
    assert time.monotonic() - started < 10
    assert isinstance(out[0], QueryFailure) and out[0].code == 394, out
    assert gateway.running_count() == 0


def test_the_concurrency_cap_answers_retry_later(store) -> None:
    gateway = EngineGateway(store.path, max_concurrent_queries=1, retry_after=2)
    thread, _ = run_in_thread(gateway, QueryRequest(ENDLESS, store.database, query_id="q-hold"))
    wait_for(lambda: gateway.running_count() == 1, interval=0.02)
    with pytest.raises(QueryFailure) as refused:
        gateway.execute(QueryRequest("SELECT 1", store.database))
    assert refused.value.code == 202 and refused.value.status == 503 and refused.value.retry_after == 2
    gateway.cancel("q-hold")
    thread.join(30)
    assert b"".join(gateway.execute(QueryRequest("SELECT 1", store.database)).chunks()) == b"1\n"


def test_close_cancels_and_waits_then_refuses(store) -> None:
    gateway = EngineGateway(store.path, ReaderLimits(max_execution_time=600))
    threads = [run_in_thread(gateway, QueryRequest(ENDLESS, store.database, query_id=f"q-close-{i}"))
               for i in range(3)]
    wait_for(lambda: all(gateway.executing(f"q-close-{i}") for i in range(3)), interval=0.02)
    started = time.monotonic()
    gateway.close(30)
    assert gateway.running_count() == 0 and time.monotonic() - started < 15
    for thread, out in threads:
        thread.join(30)
        assert isinstance(out[0], QueryFailure) and out[0].code == 394, out
    with pytest.raises(QueryFailure) as refused:
        gateway.execute(QueryRequest("SELECT 1", store.database))
    assert refused.value.status == 503


def test_abandoned_stream_is_stopped_and_its_slot_freed(store) -> None:
    gateway = EngineGateway(store.path, max_concurrent_queries=1)
    result = gateway.execute(QueryRequest("SELECT number FROM numbers(1000000000000)", store.database))
    assert next(iter(result.chunks()))  # the first block, then the reader goes away
    result.close()
    assert gateway.running_count() == 0
    assert b"".join(gateway.execute(QueryRequest("SELECT 2", store.database)).chunks()) == b"2\n"


def test_close_while_queries_are_still_being_set_up(store) -> None:
    """Queries admitted but not started yet when close() comes are stopped too (no KILL needed)."""
    gateway = EngineGateway(store.path, ReaderLimits(max_execution_time=600))
    threads = [run_in_thread(gateway, QueryRequest(ENDLESS, store.database, query_id=f"q-early-{i}"))
               for i in range(3)]
    wait_for(lambda: gateway.running_count() >= 1, interval=0.02)
    gateway.close(30)
    assert gateway.running_count() == 0
    for thread, out in threads:
        thread.join(30)
        assert isinstance(out[0], QueryFailure) and out[0].status in (500, 503), out


@pytest.mark.parametrize("fmt", sorted(STREAMED_FORMATS | set(HEADER_LINES)))
def test_streamed_output_equals_the_engines_whole_output(store, fmt: str) -> None:
    """Block by block, a streamed format must give byte for byte what the engine gives in one piece."""
    sql = f"SELECT number, toString(number) AS s FROM numbers(200000) FORMAT {fmt}"
    gateway = EngineGateway(store.path)
    result = gateway.execute(QueryRequest(sql, store.database))
    chunks = list(result.chunks())
    conn = chdb.connect(store.path)
    try:
        whole = conn.query(sql, "TabSeparated").bytes()
    finally:
        conn.close()
    assert fmt.lower() == "null" or len(chunks) > 1
    assert b"".join(chunks) == whole
