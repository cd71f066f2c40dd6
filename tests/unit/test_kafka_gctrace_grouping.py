"""Consecutive raw-text gctrace messages of one identity are normalized in one pass: the rows must be exactly
those of one `normalize_lines` call over the run's lines, each line with its message's time and offset
(values, types, order, tables, quarantine offsets), so a line torn across messages is repaired as in a file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipeline.normalize.gctrace import normalize_lines
from pipeline.normalize.kafka_messages import (
    SOURCE,
    KafkaMessage,
    Kind,
    identity_from_transport,
    normalize_messages,
)
from pipeline.normalize.rows import Rows

RECEIVED = datetime(2026, 1, 2, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "go-runtime"
GC_LINE = ("gc 7 @1.500s 2%: 0.1+2.0+0.05 ms clock, 0.4+0.5/1.0/2.0+0.2 ms cpu, 4->5->2 MB, 8 MB goal, "
           "0 MB stacks, 0 MB globals, 8 P")


def _message(offset: int, value: bytes | None, key: bytes = b"api/pod-1") -> KafkaMessage:
    return KafkaMessage(topic="gc", partition=3, offset=offset, timestamp_ms=1_767_312_000_000 + offset, key=key,
                        value=value)


def _one_call_per_identity_run(messages: list[KafkaMessage]) -> Rows:
    """The reference: one `normalize_lines` call per run of consecutive messages with the same identity."""
    rows = Rows()
    runs: list[tuple[tuple[str, str], list[KafkaMessage]]] = []
    for msg in messages:
        ident = identity_from_transport(msg)
        if runs and runs[-1][0] == ident:
            runs[-1][1].append(msg)
        else:
            runs.append((ident, [msg]))
    for (service, instance), run in runs:
        lines, observed, wheres = [], [], []
        for msg in run:
            assert msg.value is not None
            own_lines = msg.value.decode().split("\n")
            own_lines = own_lines[:-1] if own_lines[-1] == "" else own_lines
            lines += own_lines
            observed += [msg.timestamp_ms * 1_000_000] * len(own_lines)
            wheres += [msg.where] * len(own_lines)
        own = Rows()
        normalize_lines(lines, observed_ns=observed, service=service, instance=instance, source=SOURCE,
                        received_at=RECEIVED, rows=own, where_at=wheres.__getitem__)
        rows.extend(own)
    return rows


def _typed(rows: Rows) -> list:
    return [(table, [(name, [(type(v).__name__, v) for v in values]) for name, values in cols.items()])
            for table, cols in rows.tables.items()]


def test_grouped_messages_give_the_rows_of_one_call_per_message() -> None:
    lines = [line for path in sorted(SAMPLES.glob("*.txt")) for line in path.read_text().splitlines()][:3000]
    lines += [
        "gc 8 @2.000s 3%: 0.1+2.0+0.05 ms clock, this is not a number",  # quarantined, keeps its own offset
        "scav 1 KiB work, 2 KiB total, 999% util",  # out of range: quarantined
        "pacer: 25% CPU (25 exp.) for 1+2+3 B work (6 B exp.) in 7 B -> 8 B (∆goal 9, cons/mark 1.5e+00)",
        "gc 9 @3.000s 3%: 0.1+2.0+0.05 ms clock, 0.4+0.5/1.0/2.0+0.2 ms cpu, 4->5->2 MB, 8 MB goal, 0 MB stacks,",
        "app: hello",  # between the two pieces of a torn line that spans messages: repaired as in a file
        " 0 MB globals, 8 P",
    ]
    messages = [_message(i, line.encode(), key=b"api/pod-%d" % (1 + i // 700)) for i, line in enumerate(lines)]
    messages.append(_message(len(messages), f"{GC_LINE}\nnot runtime\n\n".encode()))

    grouped = Rows()
    assert normalize_messages(Kind.gctrace, messages, rows=grouped, received_at=RECEIVED) == 0
    expected = _one_call_per_identity_run(messages)
    assert _typed(grouped) == _typed(expected)
    assert grouped.count("quarantine") >= 2
    offsets = grouped.tables["quarantine"]["offset"]
    assert {len(lines) - 6, len(lines) - 5} <= set(offsets)
    assert len(lines) - 1 not in offsets  # the tail of gc 9 completed its line
    assert 9 in grouped.tables["gc_events"]["gc_num"]


def test_whole_message_failures_keep_their_place_between_groups() -> None:
    messages = [
        _message(0, GC_LINE.encode()),
        _message(1, b"\xff\xfe"),
        _message(2, b"app line"),
        _message(3, None),
        _message(4, b'{"line": "%s", "service": "api", "instance": "pod-1"}' % GC_LINE.encode()),
        _message(5, b"gc 1 @0.1s 0%: broken"),
    ]
    grouped = Rows()
    assert normalize_messages(Kind.gctrace, messages, rows=grouped, received_at=RECEIVED) == 2
    assert grouped.tables["quarantine"]["offset"] == [1, 3, 5]
    assert grouped.count("gc_events") == 2
    assert list(grouped.tables) == ["gc_events", "quarantine", "otel_logs"]


def test_observed_ranges_give_the_rows_of_one_call_around_gc_lines_stored_elsewhere() -> None:
    """The engine path's Python share (gctrace.ObservedRanges): with the plain gc lines taken out (stored by the
    engine), the stretches between them give exactly the other rows of one `normalize_lines` call, with the
    clock (process start, after_gc_num) moved past each gc line taken out."""
    from pipeline.normalize import runtime_lines as rl
    from pipeline.normalize.gctrace import GC_TABLE, ObservedRanges

    lines = [line for path in sorted(SAMPLES.glob("*.txt")) for line in path.read_text().splitlines()][:4000]
    lines += [GC_LINE[:60], "app: between the pieces", GC_LINE[60:], "gc 3 @0.1s 0%: broken", "scav 1 KiB work"]
    observed = [1_767_312_000_000_000_000 + 1_000_000 * i for i in range(len(lines))]
    where = [{"topic": "gc", "partition": 0, "offset": i} for i in range(len(lines))]
    kw = {"service": "api", "instance": "pod-1", "source": SOURCE, "received_at": RECEIVED}
    reference = Rows()
    normalize_lines(lines, observed_ns=observed, rows=reference, where_at=where.__getitem__, **kw)

    # A stand-in for the engine's test: well-formed gc lines that start with their head.
    taken = [line.startswith("gc ") and rl.parse_gc(line) is not None and " ms clock, " in line for line in lines]
    assert sum(taken) > 200 and not all(taken)
    ranges = ObservedRanges(lines, observed_ns=observed, where_at=where.__getitem__, **kw)
    got = Rows()
    i = 0
    while i < len(lines):
        if taken[i]:
            ranges.gc_stored_at(i)
            i += 1
            continue
        end = i
        while end < len(lines) and not taken[end]:
            end += 1
        ranges.normalize_range(i, end, got)
        i = end
    expected = {table: cols for table, cols in reference.tables.items() if table != GC_TABLE}
    kept = [k for k, flag in enumerate(taken) if not flag]  # gc rows made in Python: lines not taken out
    assert {t: c for t, c in got.tables.items() if t != GC_TABLE} == expected
    assert got.count(GC_TABLE) == reference.count(GC_TABLE) - sum(taken)
    assert got.count(GC_TABLE) > 0 and kept  # a repaired line and the non-plain ones are Python's
    assert ranges.stats.lines == len([line for line in lines if line is not None])
