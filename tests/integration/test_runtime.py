"""The start/stop loop of `fleetwatch run` (pipeline/runtime.py) on the real engine: reverse stop order within
one shared deadline, a failing stop does not stop the others but sets the exit code, a stop requested during
start-up starts nothing more, and the writer flushes before the store closes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.normalize.rows import Rows
from pipeline.runtime import RunContext, build_context, run_components, stop_all

pytestmark = pytest.mark.integration


class Recorder:
    """A component that records when and with how much time it was asked to stop."""

    def __init__(self, name: str, calls: list[tuple[str, float]], fail: bool = False) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def stop(self, timeout: float) -> None:
        self.calls.append((self.name, timeout))
        if self.fail:
            raise RuntimeError("stop failed")


@pytest.fixture
def ctx(settings, store) -> RunContext:
    settings.shutdown_timeout_seconds = 12.0
    return build_context(settings)


def test_components_stop_in_reverse_within_one_deadline(ctx: RunContext, store) -> None:
    calls: list[tuple[str, float]] = []
    started: list[str] = []

    def starter(name: str, *, fail: bool = False, stop_now: bool = False):
        def start(c: RunContext) -> Recorder:
            started.append(name)
            if stop_now:
                c.request_stop()
            return Recorder(name, calls, fail)
        return start

    # Rows queued in the shared writer before the stop must be stored by the time the loop returns.
    rows = Rows()
    # stamped now: a row at the epoch would be older than the tables' TTL and dropped
    rows.append("otel_logs", {"Timestamp": datetime.now(UTC), "ServiceName": "runtime-test",
                              "Body": "queued before stop"})
    future = ctx.writer.submit(rows)
    code = run_components(ctx, [
        ("first", starter("first")),
        ("failing", starter("failing", fail=True)),
        ("last", starter("last", stop_now=True)),
        ("never", starter("never")),
    ])
    assert started == ["first", "failing", "last"]  # a stop requested during start-up starts nothing more
    assert [name for name, _ in calls] == ["last", "failing", "first"]
    assert all(0 < timeout <= 12.0 for _, timeout in calls)
    assert code == 1  # the failing stop is reported, and the components after it were still stopped
    assert future.result(timeout=0) == {"otel_logs": 1}, future.result()
    n = store.scalar(f"SELECT count() FROM {store.database}.otel_logs WHERE ServiceName = 'runtime-test'")
    assert n == 1


def test_request_stop_keeps_the_first_failure(ctx: RunContext) -> None:
    ctx.request_stop(3)
    ctx.request_stop(1)
    ctx.request_stop()
    assert ctx.stop_event.is_set() and ctx.exit_code == 3
    stop_all(ctx, [])
