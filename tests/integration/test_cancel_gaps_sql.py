"""The cancel-gaps job on hand-made spans: grace (50 ms floor vs 10 % of the parent), doomed starts,
parent_cancelled propagation delay, edges that behave, and reruns that replace instead of adding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import Settings
from pipeline.jobs.runner import discover_jobs, select_jobs
from pipeline.jobs.scheduler import JobScheduler, run_once
from pipeline.store.client import Store

pytestmark = pytest.mark.integration

SPAN_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName", "ServiceInstance",
    "SpanAttributes", "Duration", "StatusCode", "StatusMessage", "RpcStatusCode",
)


class Traces:
    """Builds otel_traces and cancel_events rows with times in milliseconds from a base instant."""

    def __init__(self, base: datetime) -> None:
        self.base = base
        self.spans: list[tuple] = []
        self.cancels: list[dict] = []
        self._next = 0

    def at(self, ms: float) -> datetime:
        return self.base + timedelta(milliseconds=ms)

    def span_id(self) -> str:
        self._next += 1
        return f"{self._next:016x}"

    def span(self, trace: int, parent: str, service: str, name: str, kind: str, start_ms: float, dur_ms: float,
             *, attrs: dict[str, str] | None = None, status: str = "Unset", message: str = "", rpc: str = "",
             instance: str = "") -> str:
        sid = self.span_id()
        self.spans.append((
            self.at(start_ms), f"{trace:032x}", sid, parent, name, kind, service, instance or f"{service}-0",
            attrs or {}, int(dur_ms * 1_000_000), status, message, rpc,
        ))
        return sid

    def cancel(self, trace: int, span: str, service: str, at_ms: float, cause: str) -> None:
        self.cancels.append({
            "service": service, "instance": f"{service}-0", "trace_id": f"{trace:032x}", "span_id": span,
            "cancel_at": self.at(at_ms), "cause": cause, "stack_depth": 12, "operation": "",
            "attributes": {}, "source": "file", "received_at": datetime.now(UTC),
        })

    def insert(self, store: Store) -> None:
        store.insert_columns("otel_traces", {c: [row[i] for row in self.spans] for i, c in enumerate(SPAN_COLUMNS)})
        if self.cancels:
            store.insert_columns("cancel_events", {k: [c[k] for c in self.cancels] for k in self.cancels[0]})


@pytest.fixture
def base() -> datetime:
    """A recent minute boundary (rows older than the retention TTL would vanish on insert)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=10)


def run_job(settings: Settings, store: Store, base: datetime) -> None:
    scheduler = JobScheduler(settings, store)
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["cancel_gaps"])
    since = (base - timedelta(minutes=1)).isoformat()
    until = (base + timedelta(minutes=3)).isoformat()
    results = run_once(scheduler, jobs, datetime.now(UTC), since=since, until=until)
    assert results and all(r.status == "ok" for r in results), [r.error for r in results]


def edges(store: Store) -> dict[tuple[str, str, str, str], dict]:
    result = store.query(
        "SELECT parent_service, parent_operation, child_service, child_operation, sum(cancellations) AS cancellations,"
        " sum(overruns) AS overruns, sum(doomed_starts) AS doomed_starts, sum(observed) AS observed,"
        " max(max_overrun_ms) AS max_overrun_ms, sum(wasted_child_ms) AS wasted_child_ms,"
        " max(p50_propagation_ms) AS p50_propagation_ms, max(flagged) AS flagged, count() AS bucket_rows"
        f" FROM {store.database}.cancel_gaps FINAL GROUP BY 1, 2, 3, 4"
    )
    return {row[:4]: dict(zip(result.column_names[4:], row[4:], strict=True)) for row in result.result_rows}


def test_cancel_gaps_on_hand_made_spans(settings: Settings, store: Store, base: datetime) -> None:
    t = Traces(base)
    # 1: gateway times out its call to orders after 200 ms (grace = the 50 ms floor); the orders handler
    # sees the cancellation 5 ms later yet keeps running to 720 ms, and starts a DB insert at 400 ms.
    root = t.span(1, "", "gateway", "GET /checkout", "Server", 0, 300, attrs={"http.response.status_code": "504"},
                  status="Error")
    call = t.span(1, root, "gateway", "orders.Place", "Client", 10, 200, status="Error",
                  message='Post "http://orders/place": context deadline exceeded')
    handler = t.span(1, call, "orders", "orders.Place", "Server", 20, 700)
    t.span(1, handler, "orders", "INSERT orders", "Client", 400, 200)
    t.cancel(1, handler, "orders", 215, "parent_cancelled")
    # 2 and 3: a 2 s deadline (grace = 10 % = 200 ms): a child ending 150 ms late is tolerated, 300 ms is not.
    for trace, late_ms in ((2, 150), (3, 300)):
        r = t.span(trace, "", "gateway", "GET /report", "Server", 0, 2010)
        c = t.span(trace, r, "gateway", "reports.Build", "Client", 5, 2000, status="Error", rpc="DEADLINE_EXCEEDED",
                   attrs={"rpc.grpc.status_code": "4"})
        t.span(trace, c, "reports", "reports.Build", "Server", 10, 1995 + late_ms)
    # 4: a well-behaved edge: payments stops 20 ms after the caller cancels and saw it after 2 ms.
    r = t.span(4, "", "gateway", "GET /pay", "Server", 1000, 150)
    c = t.span(4, r, "gateway", "payments.Charge", "Client", 1005, 100, status="Error", message="context canceled")
    h = t.span(4, c, "payments", "payments.Charge", "Server", 1010, 115)
    t.cancel(4, h, "payments", 1107, "parent_cancelled")
    # 5: work started after the root request ended (no cancellation recorded); a Producer hand-off is fine.
    r = t.span(5, "", "gateway", "GET /feed", "Server", 2000, 100)
    t.span(5, r, "gateway", "cache.Warm", "Internal", 2300, 50)
    t.span(5, r, "gateway", "queue.Publish", "Producer", 2300, 5)
    # 6: a job's own deadline fires (cancel-event, cause timeout) and it keeps going for 900 ms.
    r = t.span(6, "", "batch", "nightly", "Internal", 3000, 1200)
    w = t.span(6, r, "batch", "worker.Run", "Internal", 3000, 1100)
    t.cancel(6, w, "batch", 3200, "timeout")
    t.insert(store)

    run_job(settings, store, base)
    got = edges(store)

    orders = got[("gateway", "orders.Place", "orders", "orders.Place")]
    assert orders["cancellations"] == 1 and orders["overruns"] == 1 and orders["doomed_starts"] == 0
    assert orders["max_overrun_ms"] == pytest.approx(510, abs=0.01)
    assert orders["observed"] == 1 and orders["p50_propagation_ms"] == pytest.approx(5, abs=0.01)
    insert = got[("orders", "orders.Place", "orders", "INSERT orders")]
    assert insert["overruns"] == 1 and insert["doomed_starts"] == 1 and insert["observed"] == 0

    reports = got[("gateway", "reports.Build", "reports", "reports.Build")]
    assert reports["cancellations"] == 2 and reports["overruns"] == 1 and reports["flagged"] == 0
    assert reports["max_overrun_ms"] == pytest.approx(300, abs=0.01)

    payments = got[("gateway", "payments.Charge", "payments", "payments.Charge")]
    assert payments["cancellations"] == 1 and payments["overruns"] == 0 and payments["flagged"] == 0
    assert payments["observed"] == 1 and payments["p50_propagation_ms"] == pytest.approx(2, abs=0.01)

    feed = got[("gateway", "GET /feed", "gateway", "cache.Warm")]
    assert feed["doomed_starts"] == 1 and feed["overruns"] == 1
    assert not any(k[3] == "queue.Publish" for k in got)

    batch = got[("batch", "nightly", "batch", "worker.Run")]
    assert batch["overruns"] == 1 and batch["max_overrun_ms"] == pytest.approx(900, abs=0.01)

    # The grace used for each occurrence: the floor for the 200 ms call, 10 % for the 2 s one.
    graces = dict(store.rows(
        f"SELECT child_operation, max(grace_ms) FROM {store.database}.cancel_gap_spans FINAL GROUP BY 1"))
    assert graces["orders.Place"] == pytest.approx(50) and graces["reports.Build"] == pytest.approx(200)

    # Flagging needs cancel_min_overruns (2) in a bucket: two more traces like 1 flag the orders edge.
    rerun = Traces(base + timedelta(seconds=5))
    rerun._next = 1000
    for trace in (11, 12):
        r = rerun.span(trace, "", "gateway", "GET /checkout", "Server", 0, 300)
        c = rerun.span(trace, r, "gateway", "orders.Place", "Client", 10, 200, status="Error",
                       message="context deadline exceeded")
        rerun.span(trace, c, "orders", "orders.Place", "Server", 20, 700)
    rerun.insert(store)
    run_job(settings, store, base)
    run_job(settings, store, base)  # a rerun replaces: nothing is counted twice
    again = edges(store)
    assert again[("gateway", "orders.Place", "orders", "orders.Place")]["overruns"] == 3
    assert again[("gateway", "orders.Place", "orders", "orders.Place")]["flagged"] == 1
    assert again[("gateway", "payments.Charge", "payments", "payments.Charge")]["flagged"] == 0
    assert again[("gateway", "reports.Build", "reports", "reports.Build")]["cancellations"] == 2


def test_service_rollup_view(settings: Settings, store: Store) -> None:
    """The by-service view ranks the service whose handlers overran, and leaves out a well-behaved one."""
    from pipeline.jobs.views import apply_views
    from pipeline.store.migrate import context_from_settings

    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=4)
    t = Traces(base)
    for trace in range(1, 4):
        r = t.span(trace, "", "gateway", "GET /checkout", "Server", trace * 1000, 300)
        c = t.span(trace, r, "gateway", "orders.Place", "Client", trace * 1000 + 10, 200, status="Error",
                   message="context deadline exceeded")
        t.span(trace, c, "orders", "orders.Place", "Server", trace * 1000 + 20, 900, instance=f"orders-{trace % 2}")
        c2 = t.span(trace, r, "gateway", "payments.Charge", "Client", trace * 1000 + 10, 200, status="Error",
                    message="context canceled")
        t.span(trace, c2, "payments", "payments.Charge", "Server", trace * 1000 + 20, 195)
    t.insert(store)
    run_job(settings, store, base)
    assert "cancel_gaps_by_service.sql" in apply_views(store, settings.sql_dir, context_from_settings(settings))
    result = store.query(f"SELECT * FROM {store.database}.cancel_gaps_by_service")
    rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
    assert [r["service"] for r in rows] == ["orders"]
    assert rows[0]["overruns"] == 3 and rows[0]["flagged_edges"] == 1
    assert rows[0]["instances"] == 2 and rows[0]["affected_share"] == 1
    assert rows[0]["worst_edge"] == "gateway orders.Place -> orders orders.Place"
