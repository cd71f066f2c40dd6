"""Coverage-guided fuzzing of cancel-event JSON (one event or an array) with atheris.

    python tests/fuzz/fuzz_cancel.py -runs=100000            # or -max_total_time=600

Every payload must end as stored events plus quarantined ones, one per item, and never raise.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports():
    from pipeline.normalize.cancel import normalize_cancel_payload
    from pipeline.normalize.rows import QUARANTINE, Rows

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE = ('{"service":"%s","instance":"i","trace_id":"%s","span_id":"00f067aa0ba902b7",'
            '"cancel_at":%s,"cause":"%s","stack_depth":%s,"operation":"op"}')


def check(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():  # structured: a valid-looking event with fuzzed fields
        fields = [fdp.ConsumeUnicodeNoSurrogates(40).replace("\\", "").replace('"', "") for _ in range(2)]
        payload: bytes = (TEMPLATE % (fields[0], fields[1], fdp.ConsumeUnicodeNoSurrogates(30) or "0",
                                      fdp.ConsumeUnicodeNoSurrogates(20).replace('"', ""),
                                      fdp.ConsumeIntInRange(-(2**40), 2**40))).encode()
    else:
        payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        expected = 1
    else:
        expected = len(doc) if isinstance(doc, list) else 1
    rows = Rows()
    accepted, rejected = normalize_cancel_payload(payload, rows=rows, source="fuzz", received_at=NOW)
    assert accepted + rejected == expected, (accepted, rejected, expected)
    assert rows.count("cancel_events") == accepted
    assert rows.count(QUARANTINE) == rejected


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
