"""`fleetwatch run`: which components exist and in which order they start.

Each component lives in the module that owns its transport and exposes `start(ctx) -> Component | None`
(None when its settings turn it off); the shapes and the start/stop loop live in `pipeline/runtime.py`.
This file only knows the order: they stop in reverse, so receivers stop first and nothing new is accepted,
then the Kafka source (which flushes and commits), the scheduler (which finishes or cancels its job), and
last the query endpoint, so readers can look at the store until the very end.
"""

from __future__ import annotations

import threading

from pipeline.config import Settings
from pipeline.runtime import Component, RunContext, Starter, build_context, install_signal_handlers, run_components

__all__ = ["Component", "RunContext", "build_context", "run"]


def _starters() -> list[tuple[str, Starter]]:
    """Components in start order (they stop in reverse). Imported late so `fleetwatch sql` stays light."""
    from pipeline.jobs import scheduler
    from pipeline.serve import otlp as otlp_http
    from pipeline.serve import otlp_grpc
    from pipeline.serve import query as query_http
    from pipeline.sources import kafka, scrape, tail

    return [
        ("query endpoint", query_http.start),
        ("scheduler", scheduler.start),
        ("kafka", kafka.start),
        ("files", tail.start),
        ("scraper", scrape.start),
        ("otlp grpc", otlp_grpc.start),
        ("otlp http", otlp_http.start),
    ]


def run(settings: Settings, *, until_caught_up: bool = False, install_signals: bool = True) -> int:
    """Run until SIGINT/SIGTERM (or, with `until_caught_up`, until Kafka is drained). Returns an exit code."""
    stop_event = threading.Event()
    if install_signals:
        install_signal_handlers(stop_event)  # before the store opens: a SIGTERM while migrating is clean too
    ctx = build_context(settings, until_caught_up=until_caught_up, stop_event=stop_event)
    return run_components(ctx, _starters())
