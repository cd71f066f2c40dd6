"""An OTLP export retried with the same body after a lost response is stored once, also when its first
attempt was merged with other requests into one insert and `fleetwatch run` restarted before the retry.

The store's insert deduplication cannot catch that case (the merged insert had no single token); the
writer's request ledger (`otlp_requests`, pipeline/request_ledger.py) does. Real process, real request
bytes, a restart (SIGTERM, then a new process on the same store) between the attempts.
"""

from __future__ import annotations

import threading
import urllib.request

import pytest

from tests.integration.test_faults_otlp import logs_request

pytestmark = pytest.mark.integration

REQUESTS = 6
RECORDS = 5


def _post_all(url: str, bodies: list[bytes]) -> list[int]:
    """POST every body at once (so the writer merges them), return the statuses."""
    statuses = [0] * len(bodies)

    def post(i: int) -> None:
        req = urllib.request.Request(f"{url}/v1/logs", data=bodies[i], method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            statuses[i] = resp.status

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return statuses


def test_merged_requests_retried_after_a_restart_are_stored_once(restartable) -> None:
    # A wide batching delay, so the concurrent first attempts are merged into one insert.
    fw = restartable(env={"FLEETWATCH_OTLP__BATCH_MAX_SECONDS": "1.5"}).start()
    bodies = [logs_request(f"ledger-{i}", [f"r{i}-{k}" for k in range(RECORDS)]).SerializeToString()
              for i in range(REQUESTS)]
    assert _post_all(fw.http_url, bodies) == [200] * REQUESTS
    assert fw.terminate() == 0, fw.log()[-3000:]  # the responses were "lost": the exporters retry against
    fw.start()                                      # the restarted process
    assert _post_all(fw.http_url, bodies) == [200] * REQUESTS
    fresh = logs_request("ledger-new", ["after the restart"]).SerializeToString()
    assert _post_all(fw.http_url, [fresh]) == [200]  # a new body is still stored
    assert fw.terminate() == 0, fw.log()[-3000:]

    found = fw.sql_many({
        "rows": "SELECT ServiceName AS s, count() AS n, uniqExact(Body) AS bodies FROM fleetwatch.otel_logs "
                "WHERE ServiceName LIKE 'ledger-%' GROUP BY s ORDER BY s",
        "inserts": "SELECT count() AS tokens, uniqExact(stored_at) AS batches FROM fleetwatch.otlp_requests",
    })
    stored = {r["s"]: (int(r["n"]), int(r["bodies"])) for r in found["rows"]}
    assert stored == {**{f"ledger-{i}": (RECORDS, RECORDS) for i in range(REQUESTS)}, "ledger-new": (1, 1)}
    ledger = found["inserts"][0]
    # every request recorded once; the first attempts shared inserts (otherwise the store alone would do)
    assert int(ledger["tokens"]) == REQUESTS + 1
    assert int(ledger["batches"]) < REQUESTS, ledger
