"""Plain one-line batches through the engine path's bulk staging (pipeline/sources/kafka/one_line.py) against the
Python normalizer, the reference: every row of every table identical, quarantine included, replays landing once.

The batches hold every non-blank line of every capture and the plumbing capture, one per message, identities
interleaved in strides (runs begin and end everywhere), so scavenger, pacer and notice lines, application lines
and broken runtime lines fall between recognised gc lines; the torn-line batch has runtime lines cut in two
messages and completed one or two messages later, which the reference repairs across messages.
"""

from __future__ import annotations

import pytest

from pipeline.sources.kafka.one_line import one_line_batch
from tests.integration.test_kafka_gctrace_engine import MAX_BYTES, SAMPLES, _both, _captures, _interleaved, _messages

pytestmark = [pytest.mark.integration]


def _non_blank() -> dict[str, list[str]]:
    return {name: [line for line in lines if line.strip() and "\r" not in line]
            for name, lines in _captures().items()}


@pytest.mark.parametrize(("stride", "batch"), [(37, 20_000), (1, 3_001)])
def test_plain_one_line_batches_give_identical_rows(settings, store, second_store, stride, batch) -> None:
    messages = _messages(_interleaved(_non_blank(), 1, stride))
    batches = [messages[i:i + batch] for i in range(0, len(messages), batch)]
    assert all(one_line_batch(b, MAX_BYTES) is not None for b in batches)  # the bulk staging is what is tested
    engine, counts = _both(settings, store, second_store, batches, replay=True)
    assert counts["gc_events"] > 3000 and counts["otel_logs"] > 0 and counts["quarantine"] > 0
    assert counts["scavenger_events"] > 0 and counts["pacer_events"] > 0
    assert engine.engine_lines > counts["gc_events"] * 9 // 10


def test_torn_lines_across_messages_give_identical_rows(settings, store, second_store) -> None:
    gc_lines = [line for line in (SAMPLES / "go1.27.3-storm.txt").read_text().splitlines() if line.startswith("gc ")]
    lines = gc_lines[:300]
    lines[10:11] = [lines[10][:40], lines[10][40:]]                      # cut in two messages
    lines[50:51] = [lines[50][:30], "app: between the pieces", lines[50][30:]]
    lines[90] = lines[90][:20]                                             # torn, never completed
    lines[120] = "2026-12-06T05:00:00Z stderr F " + lines[120]           # a shipper prefix
    values = [(line.encode(), b"api/torn" if i % 7 else b"api/other") for i, line in enumerate(lines)]
    messages = _messages(values)
    assert one_line_batch(messages, MAX_BYTES) is not None
    engine, counts = _both(settings, store, second_store, [messages])
    assert counts["quarantine"] >= 1 and engine.engine_lines > 250
