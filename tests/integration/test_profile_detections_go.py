"""Leak sites on real Go programs serving net/http/pprof, through the profile intake into the real engine.

tests/data/go/profiled runs one process per state: a goroutine leak that grows at fetchAll's goroutine (a),
goroutines blocked forever on unreachable channels, constant in number, that only the goroutineleak profile
proves (b), and a worker pool whose size follows a periodic load up and down (c). Their profiles are fetched
from /debug/pprof over HTTP and stored by the intake's normalizer and the sink; the leak_sites job and triage
then run on the stored rows. Time-based thresholds are scaled down through settings (seconds stand for
minutes); the SQL is the production job. Go 1.27 serves protobuf, debug=2 dumps and the goroutineleak
profile; Debian's Go 1.19 gives the text dumps of a runtime without the leak profile.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest

from pipeline.normalize.pprof import ProfileMeta, normalize_profile
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.triage import build_report
from tests.integration.test_leak_sites_sql import run_job

pytestmark = pytest.mark.integration
PROGRAM = Path(__file__).resolve().parents[1] / "data" / "go" / "profiled"
SOURCE = PROGRAM / "main.go"
GO119 = Path("/usr/lib/go-1.19/bin/go")
ROUNDS, EVERY_S, POOL_PERIOD_S = 36, 0.4, 2


def site_line(marker: str) -> int:
    """The line of main.go marked `// SITE:<marker>`: what the findings must name."""
    for number, line in enumerate(SOURCE.read_text().splitlines(), start=1):
        if line.rstrip().endswith(f"// SITE:{marker}"):
            return number
    raise AssertionError(f"no SITE:{marker} in {SOURCE}")


@dataclass
class Target:
    instance: str
    proc: subprocess.Popen
    base: str


def start(binary: Path, mode: str, instance: str, env: dict[str, str] | None = None,
          stderr: IO[str] | int = subprocess.DEVNULL) -> Target:
    proc = subprocess.Popen([str(binary), "-mode", mode, "-period", f"{POOL_PERIOD_S}s"],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first[:1] == ["listening"], f"{instance} did not start: {first}"
    return Target(instance, proc, f"http://{first[1]}")


def stop(targets: list[Target]) -> None:
    for t in targets:
        t.proc.kill()
        t.proc.wait(timeout=30)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


def ingest(store, target: Target, path: str, profile_type: str) -> None:
    """One profile through the intake: the pure normalizer, then the sink (quarantine included)."""
    data = fetch(target.base + path)
    now = datetime.now(UTC)
    rows = Rows()
    result = normalize_profile(data, ProfileMeta(
        service="profiled", instance=target.instance, source="scrape", observed_ns=time.time_ns(),
        received_at=now, type_hint=profile_type, location=target.base + path), rows)
    assert result.ok, result.error
    Sink(store).write(rows, token=f"pprof/{result.snapshot_id}")


def scale_down(settings) -> None:
    d = settings.detect
    d.window_seconds = 1
    d.leak_site_lookback_seconds = 600
    d.leak_site_bucket_seconds = POOL_PERIOD_S  # a whole load cycle per bucket: the pool's floor is its trough
    d.leak_site_min_buckets = 5


@pytest.fixture(scope="module")
def go119_binary(tmp_path_factory) -> Path:
    if not GO119.exists():
        pytest.fail(f"{GO119} is missing: `make test` installs Debian's golang-1.19-go")
    out = tmp_path_factory.mktemp("go119") / "profiled"
    cache = tmp_path_factory.mktemp("go119cache")
    env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(cache), "CGO_ENABLED": "0", "GOTOOLCHAIN": "local",
           "GOFLAGS": "", "GOPROXY": "off"}
    subprocess.run([str(GO119), "build", "-o", str(out), "."], cwd=PROGRAM, env=env, check=True, timeout=300)
    return out


@pytest.fixture
def go127_targets(build_go) -> Iterator[list[Target]]:
    binary = build_go(PROGRAM)
    targets = []
    try:
        for mode in ("leak", "blocked", "pool"):
            targets.append(start(binary, mode, mode))
        yield targets
    finally:
        stop(targets)


def _leak_findings(store, settings) -> dict[tuple[str, str], dict]:
    report = build_report(store, settings, service="profiled", since=datetime.now(UTC) - timedelta(hours=1))
    out = {}
    for f in report.leaks:
        for site in f.evidence.get("sites", []):
            out[(f.subject.split("/")[1], site["function"])] = {**site, "dig": f.dig_sql}
    return out


def test_leak_sites_named_on_go127_profiles(store, settings, go127_targets) -> None:
    scale_down(settings)
    for round_no in range(ROUNDS):
        t0 = time.monotonic()
        for target in go127_targets:
            ingest(store, target, "/debug/pprof/goroutine?debug=2", "goroutine")
            if round_no % 6 == 5:
                ingest(store, target, "/debug/pprof/goroutineleak", "goroutineleak")
        time.sleep(max(0.0, EVERY_S - (time.monotonic() - t0)))
    run_job(store, settings, "leak_sites", datetime.now(UTC))

    flagged = {(i, f): ev for i, f, ev in store.rows(
        f"SELECT instance, function, evidence FROM {settings.database}.leak_sites FINAL WHERE leaking = 1")}
    assert ("leak", "main.fetchAll.func1") in flagged, flagged
    assert "growing_site" in flagged[("leak", "main.fetchAll.func1")]
    assert flagged.get(("blocked", "main.watch")) == ["leak_profile"], flagged
    assert not [k for k in flagged if k[0] == "pool"], flagged
    evaluated = store.scalar(f"SELECT count() FROM {settings.database}.leak_sites FINAL "
                             "WHERE instance = 'pool' AND function = 'main.worker'")
    assert evaluated == 1, "the pool's site was not evaluated at all"

    findings = _leak_findings(store, settings)
    leak = findings[("leak", "main.fetchAll.func1")]
    assert leak["file:line"] == f"{SOURCE}:{site_line('leak')}"
    assert leak["created_by"].startswith("main.fetchAll ") and leak["wait_reason"] == "chan send"
    assert leak["growth_per_hour"] > 0 and leak["goroutines"] >= 100
    dug = store.rows(leak["dig"])  # the dig query runs as printed: the site's count at every snapshot
    assert len(dug) >= ROUNDS and dug[-1][2] >= leak["goroutines"] > dug[0][2], dug
    blocked = findings[("blocked", "main.watch")]
    assert blocked["file:line"] == f"{SOURCE}:{site_line('blocked')}" and blocked["goroutines"] == 20
    assert not [k for k in findings if k[0] == "pool"]


def test_leak_site_from_go119_text_dumps(store, settings, go119_binary) -> None:
    """No goroutineleak profile before Go 1.26 (404): the growing site alone names the leak."""
    scale_down(settings)
    targets = [start(go119_binary, "leak", "leak119"), start(go119_binary, "pool", "pool119")]
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            fetch(targets[0].base + "/debug/pprof/goroutineleak")
        assert missing.value.code == 404
        for _ in range(ROUNDS):
            t0 = time.monotonic()
            for target in targets:
                ingest(store, target, "/debug/pprof/goroutine?debug=2", "goroutine")
            time.sleep(max(0.0, EVERY_S - (time.monotonic() - t0)))
    finally:
        stop(targets)
    run_job(store, settings, "leak_sites", datetime.now(UTC))
    findings = _leak_findings(store, settings)
    leak = findings[("leak119", "main.fetchAll.func1")]
    assert leak["file:line"] == f"{SOURCE}:{site_line('leak')}"
    assert leak["created_by"].startswith("main.fetchAll")
    assert not [k for k in findings if k[0] == "pool119"], findings
