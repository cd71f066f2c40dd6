"""Which way a file went through the gctrace fast path: the tests of the file command look at the
`FastGctraceStream` it used (clean chunks, span batches, lines the engine took, read in place or not)."""

from __future__ import annotations

import pytest

from pipeline.sources.gctrace_fast import FastGctraceStream, GctraceFastPath


def keep_fast_streams(monkeypatch: pytest.MonkeyPatch) -> list[FastGctraceStream]:
    """Every `FastGctraceStream` the fast path makes from now to the test's end, in order."""
    streams: list[FastGctraceStream] = []
    real = GctraceFastPath.stream

    def keep(self: GctraceFastPath, *args: object, **kwargs: object) -> FastGctraceStream:
        streams.append(real(self, *args, **kwargs))  # type: ignore[arg-type]
        return streams[-1]

    monkeypatch.setattr(GctraceFastPath, "stream", keep)
    return streams
