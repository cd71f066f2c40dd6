"""What every route shares: the concurrency cap of its group, the worker-thread pool, health and /metrics.

A request over its group's cap is refused at once (not queued): a queue would hold its connection and body
while the exporter times out and sends it again. Blocking work (decoding, normalizing, the engine) runs on a
capped thread pool per port, never on the event loop, so health probes answer while the workers are busy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from pipeline.health import Health, health_answer
from pipeline.serve.body import Refusal
from pipeline.telemetry import Telemetry

T = TypeVar("T")


class RouteGroup:
    """At most `limit` requests of this group at once; the rest are refused with a retry delay."""

    def __init__(self, name: str, limit: int, *, status: int, retry_after: float) -> None:
        self.name = name
        self.limit = limit
        self.status = status
        self.retry_after = retry_after
        self.running = 0

    def __enter__(self) -> RouteGroup:
        if self.running >= self.limit:  # the event loop is single-threaded: no lock needed
            raise Refusal(self.status, f"{self.limit} {self.name} requests already running; retry later",
                          retry_after=self.retry_after, clickhouse_code=202,
                          clickhouse_name="TOO_MANY_SIMULTANEOUS_QUERIES")
        self.running += 1
        return self

    def __exit__(self, *_: object) -> None:
        self.running -= 1


class Workers:
    """The port's thread pool for blocking work."""

    def __init__(self, threads: int) -> None:
        self.limiter = anyio.CapacityLimiter(threads)

    async def run(self, fn: Callable[..., T], *args: object, abandon_on_cancel: bool = False) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter, abandon_on_cancel=abandon_on_cancel)


def health_response(health: Health | None, path: str) -> Response | None:
    """`/healthz` and `/readyz` from the probed state (never a store call per request)."""
    answer = health_answer(health, path)
    if answer is None:
        return None
    status, body = answer
    return Response(body, status_code=status, media_type="application/json")


class _TelemetryCollector(Collector):
    """The pipeline's own OpenTelemetry instruments as Prometheus metric families."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> list[Metric]:
        data = self.telemetry.memory_reader.get_metrics_data()
        families: list[Metric] = []
        if data is None:
            return families
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    families.extend(_family(metric))
        return families


def _prom_name(name: str) -> str:
    return name.replace(".", "_").replace("-", "_")


def _family(metric: object) -> list[Metric]:
    name = _prom_name(getattr(metric, "name", "metric"))
    description = getattr(metric, "description", "") or name
    points = list(getattr(getattr(metric, "data", None), "data_points", []) or [])
    kind = type(getattr(metric, "data", None)).__name__
    if not points:
        return []
    labels = sorted({str(k) for p in points for k in p.attributes})

    def values(point: object) -> list[str]:
        attributes = getattr(point, "attributes", {})
        return [str(attributes.get(k, "")) for k in labels]

    if kind == "Sum" and getattr(metric.data, "is_monotonic", False):  # type: ignore[attr-defined]
        family: Metric = CounterMetricFamily(name, description, labels=labels)
        for p in points:
            family.add_metric(values(p), p.value)
        return [family]
    if kind in ("Sum", "Gauge"):
        family = GaugeMetricFamily(name, description, labels=labels)
        for p in points:
            family.add_metric(values(p), p.value)
        return [family]
    if kind == "Histogram":
        family = HistogramMetricFamily(name, description, labels=labels)
        for p in points:
            cumulative, buckets = 0, []
            for bound, count in zip(p.explicit_bounds, p.bucket_counts, strict=False):
                cumulative += count
                buckets.append((repr(float(bound)), cumulative))
            buckets.append(("+Inf", p.count))
            family.add_metric(values(p), buckets, p.sum)
        return [family]
    return []


def metrics_page(telemetry: Telemetry) -> Callable[[], bytes]:
    """A function rendering the Prometheus text exposition of the pipeline's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_TelemetryCollector(telemetry))
    return lambda: generate_latest(registry)


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def refusal_headers(refusal: Refusal) -> dict[str, str]:
    headers = dict(refusal.headers)
    if refusal.retry_after:
        headers["Retry-After"] = str(max(1, round(refusal.retry_after)))
    if refusal.close:
        headers["Connection"] = "close"
    return headers


async def body_disconnected(request: Request) -> None:
    """Return when the client hangs up (the body must already have been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return

