"""`python -m bench.otlp_metrics`: CPU per OTLP metric point in the normalizer, by point type.

Every point is stored as sent in the Collector exporter's table of its type, and Go runtime points also
in runtime_metrics; this measures what that mapping costs per point (pure code: decode excluded, no
store), for a request shaped like an SDK's export: 50 metrics x 20 points with three attributes, the
histograms with 16 buckets and 2 exemplars. Prints one line per type.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from pipeline.normalize.otlp_common import Context
from pipeline.normalize.otlp_metrics import normalize_metrics
from pipeline.normalize.rows import Rows

NOW_NS = 1_790_000_000 * 10**9


def _attrs(i: int) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=f"{k}-{i % 7}")) for k in ("route", "method", "code")]


def build(kind: str, runtime: bool, metrics: int = 50, points: int = 20) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend([KeyValue(key="service.name", value=AnyValue(string_value="bench")),
                                   KeyValue(key="service.instance.id", value=AnyValue(string_value="b-1"))])
    sm = rm.scope_metrics.add()
    sm.scope.name = "bench"
    for m in range(metrics):
        name = "go.goroutine.count" if runtime else f"app.metric.{m}"
        metric = sm.metrics.add(name=name, unit="{goroutine}" if runtime else "1")
        data = getattr(metric, kind)
        for p in range(points):
            point = data.data_points.add(time_unix_nano=NOW_NS + p, start_time_unix_nano=NOW_NS - 10**9)
            point.attributes.extend(_attrs(p))
            if kind in ("gauge", "sum"):
                point.as_double = float(p)
            elif kind == "summary":
                point.count, point.sum = 10, 1.5
                for q in (0.5, 0.9, 0.99, 1.0):
                    point.quantile_values.add(quantile=q, value=q)
            else:
                point.count, point.sum, point.min, point.max = 16, 40.0, 0.1, 9.0
                if kind == "histogram":
                    point.bucket_counts.extend([1] * 16)
                    point.explicit_bounds.extend(float(b) for b in range(15))
                else:
                    point.scale = 3
                    point.positive.bucket_counts.extend([1] * 16)
                for e in range(2):
                    point.exemplars.add(time_unix_nano=NOW_NS + e, as_double=1.0, trace_id=b"\1" * 16,
                                        span_id=b"\2" * 8)
    return request


def measure(kind: str, runtime: bool, repeat: int) -> float:
    request = build(kind, runtime)
    points = sum(len(getattr(m, kind).data_points) for m in request.resource_metrics[0].scope_metrics[0].metrics)
    now = datetime.now(UTC)
    start = time.process_time()
    for _ in range(repeat):
        normalize_metrics(request, Context(rows=Rows(), source="bench", received_at=now))
    return (time.process_time() - start) / (repeat * points) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    for kind in ("gauge", "sum", "histogram", "exponential_histogram", "summary"):
        print(f"{kind:22s} {measure(kind, False, args.repeat):6.2f} us/point")
    print(f"{'gauge (Go runtime)':22s} {measure('gauge', True, args.repeat):6.2f} us/point"
          "  (runtime_metrics + otel_metrics_gauge)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
