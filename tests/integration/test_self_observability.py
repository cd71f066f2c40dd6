"""Fleetwatch watching itself: its own metrics exported over OTLP to its own gRPC receiver land in its store
next to the fleet's data, and `/healthz` / `/readyz` answer on the OTLP/HTTP and query endpoint ports."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from tests.integration.test_faults_otlp import logs_request
from tests.plugins.reliability import http_get

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "self-telemetry-token"
EXPECTED = {
    "fleetwatch.records.received", "fleetwatch.rows.written", "fleetwatch.records.quarantined",
    "fleetwatch.insert.duration", "fleetwatch.queue.rows",
}


def test_own_metrics_are_stored_through_the_own_receiver(restartable) -> None:
    fw = restartable(query=True)
    fw.env.update({
        "FLEETWATCH_SELF_TELEMETRY_ENDPOINT": fw.grpc_endpoint,
        "FLEETWATCH_SELF_TELEMETRY_INTERVAL_SECONDS": "0.5",
        "FLEETWATCH_OTLP__TOKEN": TOKEN,
    })
    fw.start()
    for base in (fw.http_url, fw.query_url):
        assert http_get(f"{base}/healthz") == (200, b'{"status":"alive"}\n')
        # ready once every component has started (the ports answer before the later components are up)
        deadline = time.monotonic() + 60
        status, body = http_get(f"{base}/readyz")
        while status != 200 and time.monotonic() < deadline:
            assert json.loads(body)["checks"]["components"] == "starting", body
            time.sleep(0.1)
            status, body = http_get(f"{base}/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready", body

    body = logs_request("fleet-app", ["an application line", "gc 5 @1.0s 3%: this is not a gc line"])
    req = urllib.request.Request(f"{fw.http_url}/v1/logs", data=body.SerializeToString(), method="POST",
                                 headers={"Content-Type": "application/x-protobuf",
                                          "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200

    sql = ("SELECT DISTINCT MetricName FROM merge(currentDatabase(), '^otel_metrics_') "
           "WHERE ServiceName = 'fleetwatch' FORMAT JSONEachRow")
    url = f"{fw.query_url}/?" + urllib.parse.urlencode({"query": sql})
    names: set[str] = set()
    deadline = time.monotonic() + 45
    while not names >= EXPECTED and time.monotonic() < deadline:
        status, out = http_get(url)
        assert status == 200, out
        names = {json.loads(line)["MetricName"] for line in out.decode().splitlines() if line}
        time.sleep(0.3)
    assert fw.terminate() == 0, fw.log()[-3000:]
    assert names >= EXPECTED, (sorted(names), fw.log()[-3000:])
    assert TOKEN not in fw.log()
