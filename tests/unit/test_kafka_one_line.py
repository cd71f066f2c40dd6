"""`one_line_batch` (pipeline/sources/kafka/one_line.py) against `gctrace_runs`, the general path it stands in for:
the same lines, identities and runs for a plain batch, and None for anything the general path treats otherwise."""

from __future__ import annotations

import pytest

from pipeline.normalize.kafka_messages import GctraceRun, KafkaMessage, gctrace_runs
from pipeline.sources.kafka.one_line import one_line_batch
from tests.conftest import DATA

MAX = 4096


def _msg(i: int, value: bytes | None, key: bytes | None = b"api/a", headers: tuple = ()) -> KafkaMessage:
    return KafkaMessage(topic="t", partition=0, offset=i, timestamp_ms=1_700_000_000_000 + 3 * i, key=key,
                        value=value, headers=headers)


def _plain_messages() -> list[KafkaMessage]:
    lines = [line for line in (DATA / "go-runtime" / "go1.27.3-interleave.txt").read_text().splitlines() if line]
    keys = [b"api/a", b"api/b", None, b"svc", b"api/a"]
    headers = [(), (), (("service", b"hdr"),), (), (("instance", b"i-9"),)]
    out = []
    for i, line in enumerate(lines[:600]):
        k = (i // 3) % len(keys)  # runs of three, identities coming back
        out.append(_msg(i, line.encode(), keys[k], headers[k]))
    out.append(_msg(600, "  név\u00a0gc 1 @0.1s".encode()))  # non-ASCII, leading blanks: still one line
    return out


def test_a_plain_batch_gives_the_general_paths_lines_identities_and_runs() -> None:
    messages = _plain_messages()
    plain = one_line_batch(messages, MAX)
    assert plain is not None
    runs = [item for item in gctrace_runs(messages, MAX)]
    assert all(isinstance(run, GctraceRun) for run in runs)
    assert len(plain.run_starts) == len(runs) > 100
    for index, run in enumerate(runs):
        assert isinstance(run, GctraceRun)
        again = plain.run(index)
        assert (again.identity, again.messages, again.lines) == (run.identity, run.messages, run.lines)
    assert [value.decode() for value in plain.values] == [
        line for run in runs if isinstance(run, GctraceRun) for lines in run.lines for line in lines]
    assert plain.observed_us == [m.timestamp_ms * 1000 for m in messages]
    assert [plain.identities[i] for i in plain.ident] == [
        run.identity for run in runs if isinstance(run, GctraceRun) for _ in run.messages]


@pytest.mark.parametrize("odd", [
    None, b"", b"gc 1 @0.1s\ngc 2 @0.2s", b"gc 1 @0.1s\n", b"gc 1 @0.1s\r", b"\xff\xfe gc", b"x" * (MAX + 1),
    b'{"line": "gc 1"}', b'  [{"line": "gc 1"}]', "\u2028{}".encode(), b"\x1c{}",
])
def test_anything_the_general_path_treats_otherwise_is_not_plain(odd: bytes | None) -> None:
    messages = _plain_messages()
    messages.insert(37, _msg(10_000, odd))
    assert one_line_batch(messages, MAX) is None
    assert one_line_batch(messages[:37] + messages[38:], MAX) is not None
