"""The query endpoint's optional user and password, served in-process over the session's embedded store."""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request

import pytest
from pydantic import SecretStr

from pipeline.app import RunContext
from pipeline.serve.query import QueryEndpoint, serve_gateway
from pipeline.sink import BatchingWriter, Sink
from pipeline.store.client import Store
from pipeline.store.query_engine import EngineGateway
from pipeline.telemetry import Telemetry
from tests.net import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def endpoint(store: Store, settings):
    settings.query.user, settings.query.password = "reader", SecretStr("s3cret")
    telemetry = Telemetry()
    sink = Sink(store, telemetry)
    ctx = RunContext(settings, store, sink, BatchingWriter(sink), telemetry)
    running = serve_gateway(ctx, EngineGateway(store.path), f"127.0.0.1:{free_port()}", timezone="UTC")
    yield running
    running.stop(timeout=5)
    telemetry.shutdown()


def _get(endpoint: QueryEndpoint, headers: dict[str, str] | None = None, **params: str) -> tuple[int, dict, bytes]:
    params.setdefault("query", "SELECT count() FROM cancel_events")
    url = f"http://{endpoint.address}/?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_credentials_are_required_and_checked(endpoint: QueryEndpoint) -> None:
    for attempt in ({}, {"user": "reader", "password": "wrong"}, {"user": "other", "password": "s3cret"}):
        status, headers, body = _get(endpoint, **attempt)
        assert status == 401 and headers["X-ClickHouse-Exception-Code"] == "516", (attempt, body)
        assert b"AUTHENTICATION_FAILED" in body
    basic = base64.b64encode(b"reader:s3cret").decode()
    accepted = [
        _get(endpoint, user="reader", password="s3cret"),
        _get(endpoint, headers={"Authorization": f"Basic {basic}"}),
        _get(endpoint, headers={"X-ClickHouse-User": "reader", "X-ClickHouse-Key": "s3cret"}),
    ]
    assert [(status, body) for status, _, body in accepted] == [(200, b"0\n")] * 3
    # the ping stays open for health checks
    with urllib.request.urlopen(f"http://{endpoint.address}/ping", timeout=10) as response:
        assert response.read() == b"Ok.\n"
