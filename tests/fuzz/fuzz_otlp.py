"""Coverage-guided fuzzing of OTLP decoding and normalization (protobuf and OTLP/JSON) with atheris.

    python tests/fuzz/fuzz_otlp.py -runs=100000              # or -max_total_time=600

A body is either refused with OtlpDecodeError or decoded and normalized without an exception, with
quarantine rows exactly when items were rejected.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports():
    from pipeline.normalize.otlp import OtlpDecodeError, decode_request, normalize_request
    from pipeline.normalize.rows import QUARANTINE, Rows

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SIGNALS = ("logs", "traces", "metrics")


def check(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    signal = SIGNALS[fdp.ConsumeIntInRange(0, 2)]
    encoding = "json" if fdp.ConsumeBool() else "proto"
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        request = decode_request(signal, body, encoding)  # type: ignore[arg-type]
    except OtlpDecodeError:
        return
    rows = Rows()
    result = normalize_request(signal, request, rows=rows, source="fuzz", received_at=NOW)  # type: ignore[arg-type]
    assert result.accepted >= 0 and result.rejected >= 0
    assert (rows.count(QUARANTINE) > 0) == (result.rejected > 0), (result, rows.counts())


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
