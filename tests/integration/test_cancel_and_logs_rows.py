"""cancel-event and log rows built by the normalizers are accepted by the real tables."""

from datetime import UTC, datetime

from pipeline.normalize.cancel import normalize_cancel_payload
from pipeline.normalize.logs import append_log
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink


def test_cancel_payload_rows_and_rejects_are_stored(store, settings) -> None:
    now = datetime.now(UTC)
    payload = (
        '[{"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736", "span_id": "00f067aa0ba902b7",'
        ' "cancel_at": "' + now.strftime("%Y-%m-%dT%H:%M:%S") + '.123456789Z", "cause": "canceled",'
        ' "stack_depth": 12, "service": "api"},'
        ' {"trace_id": "xyz", "span_id": "00f067aa0ba902b7", "cancel_at": 1, "cause": "boom", "stack_depth": -1}]'
    )
    rows = Rows()
    assert normalize_cancel_payload(payload, rows=rows, source="test", received_at=now, instance="i-1") == (1, 1)
    Sink(store).write(rows)
    got = store.rows(f"SELECT trace_id, cause, stack_depth, instance, toUnixTimestamp64Nano(cancel_at) % 1000000000 "
                     f"FROM {settings.database}.cancel_events")
    assert got == [("4bf92f3577b34da6a3ce929d0e0e4736", "cancelled", 12, "i-1", 123456789)]
    reason = store.scalar(f"SELECT reason FROM {settings.database}.quarantine")
    assert "trace_id" in reason and "cause" in reason and "stack_depth" in reason and "cancel_at" in reason


def test_log_rows_are_stored(store, settings) -> None:
    rows = Rows()
    append_log(rows, timestamp_ns=int(datetime.now(UTC).timestamp() * 1e9), service="api", instance="i-1",
               body="app: tick allocated=90MiB goroutines=3")
    Sink(store).write(rows)
    got = store.rows(f"SELECT ServiceName, ResourceAttributes['service.instance.id'], Body "
                     f"FROM {settings.database}.otel_logs")
    assert got == [("api", "i-1", "app: tick allocated=90MiB goroutines=3")]
