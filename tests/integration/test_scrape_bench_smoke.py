"""The scrape benchmark still runs end to end on a tiny load (no timing asserted: `make bench` measures)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.run import ROOT

pytestmark = pytest.mark.integration


def test_scrape_bench_stores_what_it_scraped(go_toolchain: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.scrape_bench", "--targets", "5", "--interval", "1",
                           "--seconds", "3", "--goroutines", "50", "--concurrency", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["scrapes"]) == {"ok"} and result["scrapes"]["ok"] >= 5
    assert result["goroutines_per_snapshot"] >= 50
    assert result["sample_bytes_per_1k_goroutines"] > 0
