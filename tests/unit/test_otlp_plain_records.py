"""The OTLP mapping's size test for records that hold only a time and a string body (pipeline/normalize/otlp_logs.py,
`_time_and_body_only`): it must say yes for exactly those scopes, whatever the texts' lengths (varint steps), the
scope's own fields, and say no as soon as any record carries anything more, unknown fields included."""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs

from pipeline.normalize.otlp_logs import _time_and_body_only

T0 = 1_764_000_000_000_000_000


def _scope(texts: list[str], **scope_fields: object) -> ScopeLogs:
    records = [LogRecord(time_unix_nano=T0 + i, body=AnyValue(string_value=text)) for i, text in enumerate(texts)]
    return ScopeLogs(log_records=records, **scope_fields)  # type: ignore[arg-type]


def _texts(lengths: range) -> list[str]:
    return ["g" * n for n in lengths]


@pytest.mark.parametrize("lengths", [range(1, 3), range(100, 160), range(120, 135), range(1, 300, 7),
                                     range(16_370, 16_400, 3)])
def test_time_and_body_only_across_varint_steps(lengths: range) -> None:
    texts = _texts(lengths)
    assert _time_and_body_only(_scope(texts), texts)
    assert _time_and_body_only(_scope(texts, scope=InstrumentationScope(name="s", version="1")), texts)
    assert _time_and_body_only(_scope(texts, schema_url="https://opentelemetry.io/schemas/1.26.0"), texts)


@pytest.mark.parametrize("extra", [
    {"attributes": [KeyValue(key="k", value=AnyValue(string_value="v"))]},
    {"event_name": "e"},
    {"severity_number": 9},
    {"severity_text": "INFO"},
    {"observed_time_unix_nano": T0},
    {"trace_id": b"\x01" * 16},
    {"span_id": b"\x01" * 8},
    {"flags": 1},
    {"dropped_attributes_count": 1},
])
def test_any_other_field_of_any_record_says_no(extra: dict[str, object]) -> None:
    texts = _texts(range(120, 140))
    for where in (0, len(texts) - 1):
        scope = _scope(texts)
        scope.log_records[where].MergeFrom(LogRecord(**extra))  # type: ignore[arg-type]
        assert not _time_and_body_only(scope, texts)


def test_unknown_fields_and_non_ascii_say_no() -> None:
    texts = _texts(range(125, 130))
    scope = _scope(texts)
    record = scope.log_records[2]
    # Field 99, varint 1: unknown to this schema, kept by the decoder, counted in the encoded size.
    record.MergeFromString(record.SerializeToString() + b"\x98\x06\x01")
    assert not _time_and_body_only(scope, texts)
    accented = ["\u00e9" * 64, "g" * 64]
    assert not _time_and_body_only(_scope(accented), accented)
    assert not _time_and_body_only(_scope([]), [])
