"""Whatever bytes arrive, the profile normalizer returns rows or one quarantine row with a reason, never an
exception: random bytes, real captures cut anywhere or with bytes flipped, gzip bombs, absurd fields."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.normalize.pprof import PprofLimits, ProfileMeta, normalize_profile
from pipeline.normalize.pprof.proto import Profile
from pipeline.normalize.rows import Rows

DATA = Path(__file__).resolve().parent.parent / "data" / "pprof"
CAPTURES = [p.read_bytes() for p in sorted(DATA.glob("go1.*")) if p.suffix in (".gz", ".txt")]
META = ProfileMeta(service="s", instance="i", source="file", observed_ns=1_764_000_000 * 10**9,
                   received_at=datetime(2026, 1, 1, tzinfo=UTC))


def _check(data: bytes, limits: PprofLimits | None = None) -> Rows:
    rows = Rows()
    result = normalize_profile(data, META, rows, limits or PprofLimits())
    if result.ok:
        assert rows.count("profile_snapshots") == 1 and "quarantine" not in rows.tables
    else:
        assert rows.tables["quarantine"]["reason"] == [result.error] and result.error
        assert rows.count("profile_snapshots") == 0
    return rows


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(CAPTURES))), st.integers(0, 10**6), st.integers(0, 255))
def test_real_captures_cut_or_flipped(which: int, where: int, byte: int) -> None:
    data = CAPTURES[which]
    cut = where % len(data)
    _check(data[:cut])
    _check(data[:cut] + bytes([byte]) + data[cut + 1:])
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    _check(raw[:cut % max(1, len(raw))])


def test_gzip_bomb_is_stopped_at_the_decoded_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20))
    rows = _check(bomb, PprofLimits(max_decoded_bytes=1 << 20))
    assert "max_decoded_bytes" in rows.tables["quarantine"]["reason"][0]


def test_absurd_profile_fields() -> None:
    prof = Profile(string_table=["", "goroutine", "count", "f", "file.go"], time_nanos=2**62)
    prof.sample_type.add(type=1, unit=2)
    prof.function.add(id=1, name=3, filename=4)
    prof.location.add(id=1).line.add(function_id=1, line=-5)
    prof.sample.add(location_id=[1], value=[-3])
    rows = _check(prof.SerializeToString())
    assert rows.tables["goroutine_samples"]["site_line"] == [0]
    assert rows.tables["profile_snapshots"]["ts"][0].year == 2025   # the observed time stands in
    prof.sample.add(location_id=[99], value=[1])
    assert "missing location 99" in _check(prof.SerializeToString()).tables["quarantine"]["reason"][0]
    other = Profile(string_table=["", "samples", "count", "cpu", "nanoseconds"])
    other.sample_type.add(type=1, unit=2)
    other.sample_type.add(type=3, unit=4)
    assert "unsupported profile" in _check(other.SerializeToString()).tables["quarantine"]["reason"][0]
