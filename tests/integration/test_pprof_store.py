"""Profile rows land in the real engine under the agreed column names; a replay with the same token
lands once; bad profiles land in quarantine with their reason."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.normalize.pprof import ProfileMeta, normalize_profile
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.store.client import Store

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parent.parent / "data" / "pprof"


def _meta(ts_ns: int | None = None) -> ProfileMeta:
    now = datetime.now(UTC)
    return ProfileMeta(service="api", instance="pod-1", source="file", observed_ns=int(now.timestamp() * 1e9),
                       received_at=now, ts_ns=ts_ns, location="test")


def test_debug2_rows_and_replay_land_once(store: Store) -> None:
    raw = (DATA / "go1.26.6-leak-short-goroutineleak-debug2.txt").read_bytes()
    rows = Rows()
    result = normalize_profile(raw, _meta(), rows)
    sink = Sink(store)
    sink.write(rows, token=f"pprof/{result.snapshot_id}")
    sink.write(rows, token=f"pprof/{result.snapshot_id}")
    db = store.database
    leaked = store.rows(
        f"SELECT site_function, site_line, created_by_function, wait_reason, sum(goroutines) AS n "
        f"FROM {db}.goroutine_samples WHERE leaked = 1 GROUP BY ALL ORDER BY n DESC")
    assert leaked[0][:4] == ("main.slowWorker", 30, "main.handle", "chan send")
    assert leaked[0][4] == raw.decode().count("(leaked)") - sum(r[4] for r in leaked[1:])
    snaps = store.rows(f"SELECT snapshot_id, format, total_goroutines FROM {db}.profile_snapshots")
    assert snaps == [(result.snapshot_id, "debug2", result.goroutines)]
    stored = store.rows(f"SELECT data FROM {db}.profile_raw")
    assert len(stored) == 1 and stored[0][0].encode() == raw
    stacks = store.rows(f"SELECT count(), uniqExact(stack_id) FROM {db}.profile_stacks")
    assert stacks[0][0] == stacks[0][1] == result.stacks


def test_bad_profiles_are_quarantined(store: Store) -> None:
    good = (DATA / "go1.27.3-leak-goroutineleak-debug1.txt").read_bytes()
    cases = {
        "truncated": gzip.compress(good)[:-12],
        "html": b"<!DOCTYPE html><html><body>login</body></html>",
        "wrong message": b"\x0a\x05hello\x12\x03abc",
        "not a profile": b"just some text\n",
    }
    rows = Rows()
    for case, data in cases.items():
        assert not normalize_profile(data, _meta(), rows).ok, case
    Sink(store).write(rows)
    reasons = [r[0] for r in store.rows(f"SELECT reason FROM {store.database}.quarantine WHERE signal = 'pprof'")]
    assert len(reasons) == len(cases)
    assert any("truncated gzip" in r for r in reasons)
    assert any("HTML" in r for r in reasons)
