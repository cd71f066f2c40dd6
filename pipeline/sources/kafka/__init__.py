"""The Kafka source: a consumer-group worker that stores every message once, whatever happens to it.

`fleetwatch run` calls `start(ctx)`; with no bootstrap address configured it returns None and Kafka stays
off. The worker runs on its own thread (consumer.py); batch plans and writes live in delivery.py; what a
message means lives in pipeline/normalize/kafka_messages.py. docs/kafka.md describes formats, settings and
why no row is lost or duplicated.
"""

from __future__ import annotations

import logging
import threading

from pipeline.config import KafkaSettings
from pipeline.runtime import RunContext
from pipeline.sources.kafka.consumer import KafkaWorker
from pipeline.sources.kafka.delivery import BatchLedger
from pipeline.sources.kafka.gctrace_engine import engine_from_settings
from pipeline.sources.pprof_files import limits_from_settings
from pipeline.store.migrate import context_from_settings

log = logging.getLogger(__name__)


def worker_class(settings: KafkaSettings) -> type[KafkaWorker]:
    """The worker for `kafka.client`: the same loop on kafka-python or on confluent-kafka (confluent.py)."""
    if settings.client == "confluent":
        from pipeline.sources.kafka.confluent import ConfluentWorker

        return ConfluentWorker
    return KafkaWorker


class KafkaSource:
    """The running worker as a `fleetwatch run` component."""

    name = "kafka"

    def __init__(self, ctx: RunContext) -> None:
        settings = ctx.settings
        ledger = BatchLedger(ctx.store, settings.kafka.group_id, settings.sql_dir, context_from_settings(settings))
        self.ctx = ctx
        self.worker = worker_class(settings.kafka)(settings.kafka, ctx.sink, ledger, ctx.telemetry,
                                                   until_caught_up=ctx.until_caught_up)
        self.worker.pprof_limits = limits_from_settings(settings)
        self.worker.gctrace_engine = engine_from_settings(settings, ctx.store)
        self.thread = threading.Thread(target=self._run, name="fleetwatch-kafka", daemon=True)

    def start(self) -> KafkaSource:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.worker.run()
        except Exception:
            log.exception("kafka worker failed")
            self.ctx.request_stop(1)
            return
        if self.worker.caught_up.is_set():
            self.ctx.request_stop()  # --until-caught-up: the whole process is done

    def stop(self, timeout: float) -> None:
        self.worker.stop_requested.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            log.warning("kafka worker did not stop within %.0fs", timeout)


def start(ctx: RunContext) -> KafkaSource | None:
    if not ctx.settings.kafka.bootstrap:
        return None
    return KafkaSource(ctx).start()
