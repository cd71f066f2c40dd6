"""Scrape targets from [[scrape]] tables and file_sd files; file_sd changes are picked up, broken files keep
the previous targets, and the URL of each profile follows the per-target debug choice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config import ScrapeTarget, load_settings
from pipeline.sources.scrape.targets import TargetSet


def test_static_targets_and_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "fw.toml"
    toml.write_text(
        '[pprof]\nscrape_profiles = ["goroutine", "allocs"]\n\n'
        '[[scrape]]\nurl = "http://10.0.0.1:6060/"\nservice = "api"\n\n'
        '[[scrape]]\nurl = "https://10.0.0.2:6060"\nservice = "web"\ninstance = "web-2"\ninterval_seconds = 15\n'
        'goroutine_debug = 0\nprofiles = ["goroutineleak"]\nheaders = { Authorization = "Bearer x" }\n'
    )
    settings = load_settings(toml)
    a, b = TargetSet(settings).refresh()
    assert (a.url, a.instance, a.interval_seconds, a.profiles) == ("http://10.0.0.1:6060", "10.0.0.1:6060", 60.0,
                                                                   ("goroutine", "allocs"))
    assert a.profile_url("goroutine") == "http://10.0.0.1:6060/debug/pprof/goroutine?debug=2"
    assert b.profile_url("goroutine") == "https://10.0.0.2:6060/debug/pprof/goroutine"
    assert (b.instance, b.profiles, dict(b.headers)) == ("web-2", ("goroutineleak",), {"Authorization": "Bearer x"})


@pytest.mark.parametrize("bad", [{"url": "file:///etc/passwd", "service": "x"},
                                 {"url": "http://h:1", "service": "x", "profiles": ["cpu"]},
                                 {"url": "http://h:1", "service": "x", "goroutine_debug": 1}])
def test_bad_targets_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ScrapeTarget(**bad)  # type: ignore[arg-type]


def test_file_sd_is_reread_when_it_changes(tmp_path: Path) -> None:
    sd = tmp_path / "targets.json"
    sd.write_text(json.dumps([{"targets": ["10.0.0.5:6060"], "labels": {"service": "api", "instance": "pod-5"}},
                              {"targets": ["10.0.0.6:6060", "10.0.0.7:6060"], "labels": {"service": "db"}}]))
    targets = TargetSet(load_settings(pprof={"file_sd": [sd]}))
    first = {(t.service, t.instance) for t in targets.refresh()}
    assert first == {("api", "pod-5"), ("db", "10.0.0.6:6060"), ("db", "10.0.0.7:6060")}
    sd.write_text(json.dumps([{"targets": ["10.0.0.9:6060"], "labels": {"service": "api"}}]))
    os.utime(sd, ns=(sd.stat().st_mtime_ns + 10**9,) * 2)
    assert {t.url for t in targets.refresh()} == {"http://10.0.0.9:6060"}
    sd.write_text("[{not json")
    os.utime(sd, ns=(sd.stat().st_mtime_ns + 10**9,) * 2)
    assert {t.url for t in targets.refresh()} == {"http://10.0.0.9:6060"}   # a broken file keeps its targets
