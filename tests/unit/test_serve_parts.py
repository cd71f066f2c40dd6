"""The serving layer's pure parts: credentials, bounded decompression, record counting, error mapping."""

from __future__ import annotations

import gzip
import zlib

import lz4.frame
import pytest
import zstandard
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from pipeline.normalize.otlp import OtlpDecodeError, OtlpResult, decode_request
from pipeline.serve.auth import bearer_ok, clickhouse_ok
from pipeline.serve.body import Refusal, count_zstd_frames, decompress
from pipeline.serve.otlp import dedup_token
from pipeline.serve.otlp_limits import TooManyObjects, TooManyRecords, check_record_count, load_json
from pipeline.serve.status import HTTP_STATUS
from pipeline.sources.otlp_export import Status, stored_outcome
from pipeline.store.client import StoreError


@pytest.mark.parametrize(("header", "ok"), [
    ("Bearer tok", True), ("bearer tok", True), ("BEARER tok", True), ("Bearer tok2", False), ("tok", False),
    ("Basic tok", False), ("Bearer  tok", False), ("", False), (None, False), ("Bearer", False),
])
def test_bearer(header: str | None, ok: bool) -> None:
    assert bearer_ok(header, "tok") is ok
    assert bearer_ok(header, None) is True


def test_clickhouse_credentials() -> None:
    assert clickhouse_ok({}, {"user": "r", "password": "p"}, "r", "p")
    assert clickhouse_ok({"x-clickhouse-user": "r", "x-clickhouse-key": "p"}, {}, "r", "p")
    assert clickhouse_ok({"authorization": "basic cjpw"}, {}, "r", "p")  # base64("r:p"), scheme any case
    assert not clickhouse_ok({"authorization": "Basic !!"}, {}, "r", "p")
    assert not clickhouse_ok({}, {"user": "r", "password": "q"}, "r", "p")
    assert clickhouse_ok({}, {}, "r", None)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "lz4", ""])
def test_decompression_is_bounded_in_output(encoding: str) -> None:
    data = b"\0" * 100_000
    pack = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstandard.ZstdCompressor().compress,
            "lz4": lz4.frame.compress, "": bytes}[encoding]
    assert decompress(pack(data), encoding, limit=100_000, max_members=4) == data
    with pytest.raises(Refusal) as refused:
        decompress(pack(data), encoding, limit=99_999, max_members=4)
    assert refused.value.status == 413


def test_members_are_bounded() -> None:
    assert decompress(gzip.compress(b"a") * 4, "gzip", limit=100, max_members=4) == b"aaaa"
    for encoding, member in (("gzip", gzip.compress(b"")), ("lz4", lz4.frame.compress(b""))):
        with pytest.raises(Refusal) as refused:
            decompress(member * 5, encoding, limit=100, max_members=4)
        assert (refused.value.status == 413 and "members" in refused.value.message) or "frames" in refused.value.message
    for garbage, encoding in ((b"\x1f\x8bxx", "gzip"), (b"abcd", "zstd"), (b"abcd", "lz4"), (b"x", "br")):
        with pytest.raises(Refusal) as refused:
            decompress(garbage, encoding, limit=100, max_members=4)
        assert refused.value.status == 400


def test_zstd_frames_are_bounded_like_gzip_members() -> None:
    """A flood of empty zstd frames is refused from the frame headers alone, whatever the frame options."""
    for frame in (zstandard.ZstdCompressor().compress(b""),
                  zstandard.ZstdCompressor(write_checksum=True, write_content_size=False).compress(b""),
                  b"\x50\x2a\x4d\x18\x00\x00\x00\x00"):  # an empty skippable frame
        with pytest.raises(Refusal) as refused:
            decompress(frame * 400_000, "zstd", limit=1 << 20, max_members=64)
        assert refused.value.status == 413 and "zstd frames" in refused.value.message
        assert decompress(frame * 64, "zstd", limit=1 << 20, max_members=64) == b""


def test_a_legitimate_multi_frame_zstd_body_decodes_whole() -> None:
    """Frames of every shape (raw, RLE and compressed blocks, several blocks per frame, checksums, unknown
    content size, skippable frames, streamed output) are counted exactly and decoded whole."""
    import random

    rng = random.Random(7)
    noise = bytes(rng.getrandbits(8) for _ in range(400_000))
    payloads = [b"a" * 300_000, noise, noise[:1000] * 300, b"", b"x"]
    frames: list[bytes] = []
    expected = b""
    for i, payload in enumerate(payloads):
        cctx = zstandard.ZstdCompressor(level=1 + i, write_checksum=i % 2 == 0, write_content_size=i % 3 != 0)
        frames.append(cctx.compress(payload))
        expected += payload
    streamed = zstandard.ZstdCompressor().compressobj()
    frames.append(streamed.compress(noise[:200_000]) + streamed.flush())
    expected += noise[:200_000]
    frames.insert(2, b"\x5f\x2a\x4d\x18\x03\x00\x00\x00abc")  # skippable frames carry no output
    body = b"".join(frames)
    assert count_zstd_frames(body, 100) == len(frames)
    assert decompress(body, "zstd", limit=len(expected), max_members=len(frames)) == expected
    with pytest.raises(Refusal):
        decompress(body, "zstd", limit=len(expected), max_members=len(frames) - 1)
    with pytest.raises(Refusal) as refused:  # cut in the middle of a block: the decoder says why
        decompress(body[: len(frames[0]) - 5], "zstd", limit=len(expected), max_members=len(frames))
    assert refused.value.status == 400


def test_records_are_counted_on_the_wire_for_every_signal() -> None:
    traces = ExportTraceServiceRequest()
    spans = traces.resource_spans.add().scope_spans.add().spans
    for _ in range(10):
        spans.add(name="s")
    body = traces.SerializeToString()
    check_record_count("traces", body, 10)
    with pytest.raises(TooManyRecords):
        check_record_count("traces", body, 9)
    metrics = ExportMetricsServiceRequest()
    scope = metrics.resource_metrics.add().scope_metrics.add()
    for kind in ("gauge", "sum", "histogram", "summary"):
        metric = scope.metrics.add(name=kind)
        for _ in range(3):
            getattr(metric, kind).data_points.add()
    body = metrics.SerializeToString()
    check_record_count("metrics", body, 12)
    with pytest.raises(TooManyRecords):
        check_record_count("metrics", body, 11)
    check_record_count("logs", b"\xff\xff garbage", 1)  # malformed: left to the decoder


def test_json_objects_and_depth_are_bounded() -> None:
    with pytest.raises(TooManyObjects):
        load_json(b"[" + b",".join([b"{}"] * 11) + b"]", 10)
    with pytest.raises(OtlpDecodeError):
        decode_request("logs", b'{"resourceLogs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json")


def test_resource_exhaustion_is_retryable_not_a_500() -> None:
    emfile = StoreError("Code: 76. DB::ErrnoException: Cannot open file x, errno: 24, strerror: Too many open files. "
                        "(CANNOT_OPEN_FILE)")
    outcome = stored_outcome("logs", OtlpResult(), emfile)
    assert outcome.status is Status.UNAVAILABLE and HTTP_STATUS[outcome.status] == 503 and outcome.retry_after >= 1
    memory = StoreError("Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)")
    assert stored_outcome("logs", OtlpResult(), memory).status is Status.UNAVAILABLE
    assert stored_outcome("logs", OtlpResult(), OSError(24, "Too many open files")).status is Status.UNAVAILABLE
    wrong = StoreError("Code: 53. DB::Exception: Type mismatch. (TYPE_MISMATCH)")
    assert stored_outcome("logs", OtlpResult(), wrong).status is Status.FAILED


def test_dedup_token_is_per_signal_and_body() -> None:
    assert dedup_token("logs", b"a") == dedup_token("logs", b"a")
    assert dedup_token("logs", b"a") != dedup_token("traces", b"a")
    assert dedup_token("logs", b"a") != dedup_token("logs", b"b")


def test_query_errors_keep_clickhouse_shape_and_exhaustion_is_retryable() -> None:
    from pipeline.serve.query import failure_response
    from pipeline.store.query_engine import QueryFailure

    emfile = QueryFailure(76, "Code: 76. DB::ErrnoException: Cannot open file /x, errno: 24, strerror: Too many "
                              "open files. (CANNOT_OPEN_FILE)", "CANNOT_OPEN_FILE")
    response = failure_response(emfile, "q1", "UTC")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.headers["x-clickhouse-exception-code"] == "76" and response.body.startswith(b"Code: 76.")
    syntax = QueryFailure(62, "Syntax error: failed at position 1", "SYNTAX_ERROR")
    response = failure_response(syntax, "q2", "UTC")
    assert response.status_code == 400 and "retry-after" not in response.headers
    refusal = Refusal(503, "2 query requests already running; retry later", retry_after=1, clickhouse_code=202,
                      clickhouse_name="TOO_MANY_SIMULTANEOUS_QUERIES")
    response = failure_response(refusal, "q3", "UTC")
    assert response.status_code == 503 and response.headers["x-clickhouse-exception-code"] == "202"
    assert b"TOO_MANY_SIMULTANEOUS_QUERIES" in response.body
