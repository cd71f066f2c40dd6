"""`fleetwatch run` scrapes the targets of its TOML file and of a file_sd file it re-reads while running,
and `fleetwatch pprof export` reads a snapshot back through the running pipeline's query endpoint."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.net import FLEETWATCH
from tests.pprof_programs import Target, build
from tests.process import FleetwatchProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _count(fw: FleetwatchProcess, sql: str) -> int:
    req = urllib.request.Request(fw.query_url + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.read().decode().strip() or 0)


def test_run_scrapes_toml_and_file_sd_targets(tmp_path: Path, go_toolchain: dict[str, str]) -> None:
    env = {k: v for k, v in go_toolchain.items() if k != "go"}
    binary = build(go_toolchain["go"], tmp_path / "pprofleak", env)
    static, discovered = Target(binary, "-parked", "20"), Target(binary, "-parked", "7", "-grow", "200ms")
    sd = tmp_path / "targets.json"
    sd.write_text("[]")
    config = tmp_path / "fw.toml"
    config.write_text(
        f'[pprof]\nfile_sd = ["{sd}"]\nfile_sd_refresh_seconds = 0.5\ngoroutineleak_interval_seconds = 1\n\n'
        f'[[scrape]]\nurl = "{static.base}"\nservice = "api"\ninstance = "static"\ninterval_seconds = 1\n'
        'profiles = ["goroutine", "allocs"]\n')
    fw = FleetwatchProcess(tmp_path, {"FLEETWATCH_CONFIG": str(config)}, query=True)
    try:
        fw.start()
        wait_for(lambda: _count(fw, "SELECT count() FROM fleetwatch.scrapes WHERE instance = 'static' "
                                 "AND status = 'ok'") >= 4, 60, "scrapes of the static target", interval=0.3)
        sd.write_text(json.dumps([{"targets": [discovered.base.removeprefix("http://")],
                                   "labels": {"service": "web", "instance": "found", "interval_seconds": "1"}}]))
        wait_for(lambda: _count(fw, "SELECT count() FROM fleetwatch.profile_snapshots WHERE instance = 'found' "
                                 "AND profile_type = 'goroutine'") >= 3, 60, "scrapes of the file_sd target",
                 interval=0.3)
        out = subprocess.run([FLEETWATCH, "pprof", "export", "--service", "api", "--instance", "static", "--type",
                              "allocs", "--query-http", fw.query_url.removeprefix("http://"),
                              "--clickhouse-dsn", fw.dsn, "-o", str(tmp_path / "a.pb.gz")],
                             env=fw.env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "a.pb.gz").read_bytes()[:2] == b"\x1f\x8b"
    finally:
        code = fw.terminate() if fw.alive() else 0
        static.stop()
        discovered.stop()
    assert code == 0, fw.log()[-3000:]
    rows = fw.sql_many({
        "parked": "SELECT instance, sum(goroutines) AS n FROM fleetwatch.goroutine_samples "
                  "WHERE site_function = 'main.leakParked' GROUP BY instance, snapshot_id ORDER BY instance, n",
        "types": "SELECT DISTINCT instance, profile_type FROM fleetwatch.profile_snapshots ORDER BY ALL",
    })
    static_counts = {r["n"] for r in rows["parked"] if r["instance"] == "static"}
    found_counts = [r["n"] for r in rows["parked"] if r["instance"] == "found"]
    assert static_counts == {20}
    assert len(set(found_counts)) > 1 and min(found_counts) >= 7   # the -grow target's leak rises
    assert {(r["instance"], r["profile_type"]) for r in rows["types"]} == {
        ("static", "goroutine"), ("static", "allocs"), ("found", "goroutine"), ("found", "goroutineleak"),
        ("found", "allocs")}
