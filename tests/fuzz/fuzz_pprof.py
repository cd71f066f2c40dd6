"""Coverage-guided fuzzing of the profile normalizer (pprof protobuf, gzip, goroutine dumps) with atheris.

    python tests/fuzz/fuzz_pprof.py -runs=100000            # or -max_total_time=600

The first byte picks the hint; the rest is the profile (gzipped when the second byte is odd). Every input
must end as stored rows or exactly one quarantine row with a reason, and never raise.
"""

from __future__ import annotations

import gzip
import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports():
    from pipeline.normalize.pprof import PROFILE_TYPES, PprofLimits, ProfileMeta, normalize_profile
    from pipeline.normalize.rows import QUARANTINE, Rows

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = PprofLimits(max_input_bytes=1 << 20, max_decoded_bytes=4 << 20, max_samples=10_000)
HINTS = (None, *PROFILE_TYPES)


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    hint = HINTS[data[0] % len(HINTS)]
    body = gzip.compress(data[2:], mtime=0) if data[1] & 1 else data[2:]
    meta = ProfileMeta(service="s", instance="i", source="fuzz", observed_ns=1_767_225_600 * 10**9,
                       received_at=NOW, type_hint=hint)
    rows = Rows()
    result = normalize_profile(body, meta, rows, LIMITS)
    if result.ok:
        assert rows.count("profile_snapshots") == 1 and rows.count(QUARANTINE) == 0
    else:
        assert rows.count(QUARANTINE) == 1 and result.error and rows.count("profile_snapshots") == 0


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
