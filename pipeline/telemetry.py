"""The pipeline's own metrics, through opentelemetry-sdk.

Instruments are created once here and used everywhere by name, so the list of what Fleetwatch reports about
itself is readable in one place. With `self_telemetry_endpoint` set they are exported over OTLP/gRPC (point
it at Fleetwatch itself to keep them next to the fleet's data); otherwise an in-memory reader keeps them for
`/healthz` and tests.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from pipeline import __version__

log = logging.getLogger(__name__)


class Telemetry:
    """Counters and histograms describing the pipeline's own work."""

    def __init__(
        self, endpoint: str = "", instance: str = "", export_interval_ms: int = 10_000,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.memory_reader = InMemoryMetricReader()
        readers: list[MetricReader] = [self.memory_reader]
        if endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=endpoint, insecure=not endpoint.startswith("https"), headers=headers),
                    export_interval_millis=export_interval_ms,
                )
            )
        resource = Resource.create(
            {"service.name": "fleetwatch", "service.version": __version__, "service.instance.id": instance}
        )
        self.provider = MeterProvider(resource=resource, metric_readers=readers)
        meter = self.provider.get_meter("fleetwatch", __version__)
        self.records_in = meter.create_counter(
            "fleetwatch.records.received", unit="{record}", description="Records received, by source and signal"
        )
        self.rows_written = meter.create_counter(
            "fleetwatch.rows.written", unit="{row}", description="Rows inserted into the store, by table"
        )
        self.quarantined = meter.create_counter(
            "fleetwatch.records.quarantined", unit="{record}", description="Inputs rejected into quarantine"
        )
        self.insert_errors = meter.create_counter(
            "fleetwatch.insert.errors", unit="{error}", description="Failed inserts, by kind"
        )
        self.batch_latency = meter.create_histogram(
            "fleetwatch.insert.duration", unit="s", description="Time to insert one batch"
        )
        self.queue_rows = meter.create_up_down_counter(
            "fleetwatch.queue.rows", unit="{row}", description="Rows accepted and waiting for the writer"
        )
        self.journal_lines = meter.create_up_down_counter(
            "fleetwatch.journal.lines", unit="{line}",
            description="OTLP gc lines answered and in the journal, not yet stored (pipeline/journal.py)",
        )
        self.consumer_lag = meter.create_histogram(
            "fleetwatch.kafka.lag", unit="{message}", description="Messages behind the high watermark, per poll"
        )
        self.kafka_buffered = meter.create_histogram(
            "fleetwatch.kafka.buffered", unit="{message}",
            description="Messages fetched and waiting to be written (the Kafka source's queue), per second",
        )
        self.job_duration = meter.create_histogram(
            "fleetwatch.job.duration", unit="s", description="Detection job run time"
        )

    def snapshot(self) -> dict[str, Any]:
        """Current values of the counters, flattened by metric name and attributes (for health pages)."""
        out: dict[str, Any] = {}
        data = self.memory_reader.get_metrics_data()
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        attrs = ",".join(f"{k}={v}" for k, v in sorted(point.attributes.items()))
                        key = f"{metric.name}{{{attrs}}}" if attrs else metric.name
                        out[key] = getattr(point, "value", None) if hasattr(point, "value") else point.sum
        return out

    def shutdown(self) -> None:
        try:
            self.provider.shutdown()
        except Exception:
            log.debug("telemetry shutdown failed", exc_info=True)


_default: Telemetry | None = None


def get_telemetry() -> Telemetry:
    """The process-wide instance, created on first use."""
    global _default
    if _default is None:
        _default = Telemetry()
    return _default


def set_telemetry(telemetry: Telemetry) -> None:
    global _default
    _default = telemetry
