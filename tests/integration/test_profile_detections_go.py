"""Leak sites on real Go programs serving net/http/pprof, through the profile intake into the real engine.

tests/data/go/profiled runs one process per state: a goroutine leak that grows at fetchAll's goroutine (a),
goroutines blocked forever on unreachable channels, constant in number, that only the goroutineleak profile
proves (b), and a worker pool whose size follows a periodic load up and down (c). Go 1.27 targets are
scraped by the scraper of `fleetwatch run` (in process, into the test's store); Go 1.19 dumps (no
goroutineleak profile) are saved to files and go through `fleetwatch ingest pprof`, `fleetwatch jobs
run-once` and `fleetwatch triage` as commands. Time-based thresholds are scaled down through settings
(seconds stand for minutes); the SQL is the production job.
"""

from __future__ import annotations

import json
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

from pipeline.config import ScrapeTarget
from pipeline.report.triage import build_report
from pipeline.sink import Sink
from pipeline.sources.scrape import Scraper
from tests.integration.test_leak_sites_sql import run_job
from tests.net import FLEETWATCH
from tests.waiting import wait_for

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
          stderr: IO[str] | int = subprocess.DEVNULL, addr: str = "127.0.0.1:0") -> Target:
    proc = subprocess.Popen([str(binary), "-mode", mode, "-period", f"{POOL_PERIOD_S}s", "-addr", addr],
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
    pprof = settings.pprof.model_copy(update={"goroutineleak_interval_seconds": 2.0, "goroutine_debug": 2})
    scrape = [ScrapeTarget(url=t.base, service="profiled", instance=t.instance, interval_seconds=EVERY_S,
                           profiles=["goroutine", "goroutineleak"]) for t in go127_targets]
    scraper = Scraper(settings.model_copy(update={"scrape": scrape, "pprof": pprof}), Sink(store)).start()
    db = settings.database
    try:
        fewest = (f"SELECT min(n) FROM (SELECT instance, countIf(profile_type = 'goroutine') AS n "
                  f"FROM {db}.profile_snapshots GROUP BY instance HAVING countIf(profile_type = 'goroutineleak') > 0)"
                  f" HAVING count() = {len(go127_targets)}")
        wait_for(lambda: (store.scalar(fewest) or 0) >= ROUNDS, 120, "scraped snapshots of every target")
    finally:
        scraper.stop()
    run_job(store, settings, "leak_sites", datetime.now(UTC))

    flagged = {(i, f): ev for i, f, ev in store.rows(
        f"SELECT instance, function, evidence FROM {settings.database}.leak_sites FINAL WHERE leaking = 1")}
    assert ("leak", "main.fetchAll.func1") in flagged, flagged
    assert "growing_site" in flagged[("leak", "main.fetchAll.func1")]
    assert flagged.get(("blocked", "main.watch")) == ["leak_profile"], flagged
    pool_rows = store.dicts(f"SELECT first_floor, last_floor, floor_rho, n_snapshots, goroutines, evidence "
                            f"FROM {settings.database}.leak_sites FINAL WHERE instance = 'pool'")
    assert not [k for k in flagged if k[0] == "pool"], (flagged, pool_rows)
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


def _fw(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([FLEETWATCH, *args], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"fleetwatch {' '.join(args)} failed:\n{out.stderr[-3000:]}"
    return out.stdout


def test_leak_site_from_go119_text_dumps(tmp_path, go119_binary) -> None:
    """No goroutineleak profile before Go 1.26 (404): the growing site alone names the leak. Saved debug=2
    dumps go through the commands an operator would run: ingest pprof, jobs run-once, triage."""
    targets = [start(go119_binary, "leak", "leak119"), start(go119_binary, "pool", "pool119")]
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            fetch(targets[0].base + "/debug/pprof/goroutineleak")
        assert missing.value.code == 404
        for round_no in range(ROUNDS):
            t0 = time.monotonic()
            for target in targets:
                dump = tmp_path / target.instance / f"{round_no:03d}.txt"
                dump.parent.mkdir(exist_ok=True)
                dump.write_bytes(fetch(target.base + "/debug/pprof/goroutine?debug=2"))  # mtime: when taken
            time.sleep(max(0.0, EVERY_S - (time.monotonic() - t0)))
    finally:
        stop(targets)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
    env.update({"FLEETWATCH_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'store'}", "FLEETWATCH_QUERY_HTTP": "",
                "FLEETWATCH_DETECT__WINDOW_SECONDS": "1", "FLEETWATCH_DETECT__LEAK_SITE_LOOKBACK_SECONDS": "600",
                "FLEETWATCH_DETECT__LEAK_SITE_BUCKET_SECONDS": str(POOL_PERIOD_S),
                "FLEETWATCH_DETECT__LEAK_SITE_MIN_BUCKETS": "5"})
    for target in targets:
        _fw(env, "ingest", "pprof", *map(str, sorted((tmp_path / target.instance).iterdir())),
            "--service", "profiled", "--instance", target.instance)
    # windows right after the last dump (an instance is evaluated while it still reports)
    newest = max(p.stat().st_mtime for p in tmp_path.glob("*/*.txt"))
    last = datetime.fromtimestamp(newest, tz=UTC).replace(microsecond=0) + timedelta(seconds=1)
    _fw(env, "jobs", "run-once", "--job", "leak_sites", "--since", (last - timedelta(seconds=1)).isoformat(),
        "--until", (last + timedelta(seconds=1)).isoformat())
    report = json.loads(_fw(env, "triage", "--service", "profiled", "--since", "1h", "--format", "json"))
    sites = {(f["subject"], s["function"]): s for f in report["leaks"] for s in f["evidence"].get("sites", [])}
    assert ("profiled/leak119", "main.fetchAll.func1") in sites, (report, _fw(
        env, "sql", "SELECT instance, function, leaking, n_snapshots, first_floor, last_floor, floor_rho, window_end "
        "FROM fleetwatch.leak_sites FINAL"), _fw(env, "sql", "SELECT instance, count(), min(ts), max(ts) "
        "FROM fleetwatch.profile_snapshots GROUP BY instance"))
    leak = sites[("profiled/leak119", "main.fetchAll.func1")]
    assert leak["file:line"] == f"{SOURCE}:{site_line('leak')}", leak
    assert leak["created_by"].startswith("main.fetchAll") and leak["wait_reason"] == "chan send"
    assert leak["evidence"] == ["growing_site"]
    assert not [k for k in sites if k[0] == "profiled/pool119"], sites
