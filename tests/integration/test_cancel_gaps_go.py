"""Cancel-propagation gaps on real Go output: the demo fleet's nocancel and healthy scenarios (real HTTP
calls with deadlines, real span and cancel-event emission) go through the OTLP normalizer into the store,
the cancel_gaps job runs through the scheduler's run-once, and only the edge whose handler ignores the
cancellation is flagged."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import Settings
from pipeline.jobs.runner import discover_jobs, select_jobs
from pipeline.jobs.scheduler import JobScheduler, run_once
from pipeline.normalize.otlp import decode_request, normalize_request
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.store.client import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNALS = {"/v1/logs": "logs", "/v1/traces": "traces", "/v1/metrics": "metrics"}


def run_scenarios(binary, endpoint: str, seconds: int) -> None:
    def one(scenario: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(binary), "-scenario", scenario, "-duration", f"{seconds}s", "-endpoint", endpoint,
             "-interval", "500ms"],
            capture_output=True, text=True, timeout=seconds + 30,
        )

    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(one, ["nocancel", "healthy"]))
    for proc in done:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "otlp:" not in proc.stdout, proc.stdout[-2000:]


def test_gap_flagged_on_ignoring_edge_only(settings: Settings, store: Store, fleet_binary, otlp_capture) -> None:
    started = datetime.now(UTC)
    run_scenarios(fleet_binary, otlp_capture.endpoint, seconds=4)
    bodies = otlp_capture.take()
    assert {path for path, _ in bodies} >= {"/v1/traces", "/v1/metrics"}

    rows = Rows()
    for index, (path, body) in enumerate(bodies):
        signal = SIGNALS[path]
        result = normalize_request(signal, decode_request(signal, body, "json"), rows=rows, source="otlp_http",
                                   received_at=datetime.now(UTC), quarantine={"location": f"{path}#{index}"})
        assert result.rejected == 0, result.error_message
    Sink(store).write(rows, token=f"demo-{started.timestamp()}")

    scheduler = JobScheduler(settings, store)
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["cancel_gaps"])
    now = datetime.now(UTC)
    results = run_once(scheduler, jobs, now, since=(started - timedelta(minutes=1)).isoformat(),
                       until=(now + timedelta(minutes=1)).isoformat())
    assert results and all(r.status == "ok" for r in results), [r.error for r in results]

    result = store.query(
        "SELECT parent_service, parent_operation, child_service, child_operation, sum(cancellations),"
        " sum(overruns), sum(doomed_starts), sum(observed), max(flagged)"
        f" FROM {store.database}.cancel_gaps FINAL GROUP BY 1, 2, 3, 4"
    )
    edges = {r[:4]: r[4:] for r in result.result_rows}

    # orders ignores the gateway's 150 ms deadline: every cancelled call overruns, the cancel-event shows the
    # cancellation did reach the handler, and its database insert starts after the caller gave up.
    cancellations, overruns, _, observed, flagged = edges[("gateway", "orders.Place", "orders", "orders.Place")]
    assert cancellations >= 5 and overruns == cancellations and flagged == 1
    assert observed >= cancellations * 0.8
    _, db_overruns, db_doomed, _, db_flagged = edges[("orders", "orders.Place", "orders", "INSERT orders")]
    assert db_doomed >= 1 and db_overruns >= 1 and db_flagged == 1

    # payments stops when its context is cancelled: cancellations reach it, none overrun, nothing flagged.
    pay = edges[("storefront", "payments.Charge", "payments", "payments.Charge")]
    assert pay[0] >= 3 and pay[1] == 0 and pay[4] == 0 and pay[3] >= 1
    assert not [e for e, v in edges.items() if "payments" in (e[0], e[2]) and (v[1] > 0 or v[4])]
