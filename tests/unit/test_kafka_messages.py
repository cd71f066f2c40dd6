"""Kafka message decoding, pure: identity, envelope spellings, time units, poison reasons, determinism."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pipeline.normalize.kafka_messages import (
    KafkaMessage,
    Kind,
    envelope_time_ns,
    identity_from_transport,
    normalize_messages,
    otlp_encoding_of,
    parse_envelope,
)
from pipeline.normalize.rows import Rows

T_NS = 1_796_000_000_123_456_789  # 2026-11-29
LINE = "gc 3 @1.500s 2%: 0.015+0.51+0.003 ms clock, 0.12+0.20/0.41/0.10+0.024 ms cpu, 4->4->1 MB, 5 MB goal, " \
       "0 MB stacks, 0 MB globals, 8 P"
RECEIVED = datetime(2026, 11, 29, tzinfo=UTC)


def msg(value: bytes | str | dict | None, *, key: bytes | None = None, headers: dict[str, str] | None = None,
        offset: int = 7) -> KafkaMessage:
    if isinstance(value, dict):
        value = json.dumps(value)
    if isinstance(value, str):
        value = value.encode()
    return KafkaMessage("topic", 2, offset, T_NS // 10**6, key, value,
                        tuple((k, v.encode()) for k, v in (headers or {}).items()))


def test_identity_prefers_headers_then_the_key() -> None:
    assert identity_from_transport(msg("x", key=b"api/pod-1")) == ("api", "pod-1")
    assert identity_from_transport(msg("x", key=b"api/pod-1", headers={"Service": "web"})) == ("web", "pod-1")
    assert identity_from_transport(msg("x", key=b"api")) == ("api", "")
    assert identity_from_transport(msg("x")) == ("unknown", "")


@pytest.mark.parametrize(
    ("envelope", "service", "instance"),
    [
        ({"service": "s", "instance": "i", "line": LINE}, "s", "i"),
        ({"service.name": "s", "service.instance.id": "i", "lines": [LINE]}, "s", "i"),
        ({"log": LINE + "\n", "stream": "stderr"}, "hdr", "hi"),  # Docker json-file: identity from headers
        ({"message": LINE, "kubernetes": {"pod_name": "p", "labels": {"app": "a"}}}, "a", "p"),
        ({"message": LINE, "kubernetes": {"pod_name": "p", "container_name": "c"}}, "c", "p"),
        ({"message": LINE, "kubernetes.pod_name": "p", "kubernetes.pod_labels": {"app.kubernetes.io/name": "n"}},
         "n", "p"),
        ({"message": LINE, "host": "h1"}, "hdr", "h1"),
        ({"message": LINE, "host": {"name": "h2"}}, "hdr", "h2"),
    ],
)
def test_envelope_identity_in_agent_spellings(envelope: dict, service: str, instance: str) -> None:
    env = parse_envelope(envelope, msg(envelope, headers={"service": "hdr", "instance": "hi"}))
    assert (env.service, env.instance) == (service, instance)
    assert env.lines == [LINE]


@pytest.mark.parametrize(
    "value",
    [T_NS, str(T_NS), T_NS // 1000, T_NS // 10**6, T_NS / 1e9, f"{T_NS / 1e9:.6f}"],
)
def test_envelope_time_in_every_unit(value) -> None:
    assert abs(envelope_time_ns(value) - T_NS) < 10**6  # within the precision of the coarsest unit


def test_rfc3339_keeps_nanoseconds() -> None:
    iso = datetime.fromtimestamp(T_NS // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".123456789Z"
    assert envelope_time_ns(iso) == T_NS


def test_record_time_is_the_default() -> None:
    env = parse_envelope({"line": LINE}, msg({"line": LINE}))
    assert env.observed_ns == (T_NS // 10**6) * 10**6


def test_content_type_header_overrides_the_topic_encoding() -> None:
    assert otlp_encoding_of(msg(b""), "otlp_proto") == "proto"
    assert otlp_encoding_of(msg(b""), "otlp_json") == "json"
    assert otlp_encoding_of(msg(b"", headers={"content-type": "application/json; charset=utf-8"}), "otlp_proto") == \
        "json"
    assert otlp_encoding_of(msg(b"", headers={"Content-Type": "application/x-protobuf"}), "otlp_json") == "proto"


@pytest.mark.parametrize(
    ("kind", "value", "needle"),
    [
        (Kind.gctrace, b"\xff\xfe", "not UTF-8"),
        (Kind.gctrace, b'{"line": 1', "invalid JSON envelope"),
        (Kind.gctrace, b'{"service": "s"}', "no line found"),
        (Kind.gctrace, b'[1, 2]', "must be an object"),
        (Kind.gctrace, None, "tombstone"),
        (Kind.gctrace, b"x" * 101, "exceeds max_message_bytes"),
        (Kind.otlp_logs, b"\x0a\xff\xff", "cannot decode otlp_proto"),
        (Kind.otlp_spans, b"{", "cannot decode otlp_json"),
    ],
)
def test_poison_messages_become_one_quarantine_row_with_their_location(kind: Kind, value, needle: str) -> None:
    rows = Rows()
    encoding = "otlp_json" if value == b"{" else "otlp_proto"
    poisoned = normalize_messages(kind, [msg(value)], rows=rows, received_at=RECEIVED, otlp_encoding=encoding,
                                  max_message_bytes=100)
    assert poisoned == 1
    assert rows.counts() == {"quarantine": 1}
    q = {k: v[0] for k, v in rows.tables["quarantine"].items()}
    assert (q["topic"], q["partition"], q["offset"], q["source"], q["signal"]) == ("topic", 2, 7, "kafka", kind.value)
    assert needle in q["reason"]


def test_the_same_batch_gives_the_same_rows() -> None:
    """Replays rely on it: equal messages and received_at, equal rows in equal order."""
    batch = [msg(LINE, key=b"a/b", offset=1), msg({"service": "s", "lines": [LINE, "app"]}, offset=2),
             msg(b"\xff", offset=3)]
    first, second = Rows(), Rows()
    normalize_messages(Kind.gctrace, batch, rows=first, received_at=RECEIVED)
    normalize_messages(Kind.gctrace, batch, rows=second, received_at=RECEIVED)
    assert first.tables == second.tables
    assert first.counts() == {"gc_events": 2, "otel_logs": 1, "quarantine": 1}
