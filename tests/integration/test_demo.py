"""`make demo` end to end: real Go services -> OTLP/HTTP -> `fleetwatch run` -> scheduled jobs -> triage.

The demo's own verdict is the assertion: it exits 0 only when triage names the GC storm, the goroutine leak
and the cancellation gap, and reports nothing for the healthy services. The limit is generous for a loaded
machine; the demo normally finds all three in under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_finds_the_three_culprits_and_spares_the_healthy(go_toolchain: dict[str, str]) -> None:
    env = {**os.environ, **{k: v for k, v in go_toolchain.items() if k != "go"}}
    env.pop("GO111MODULE", None)
    proc = subprocess.run([sys.executable, "-m", "deploy.demo.run", "--limit", "240"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=420)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    for scenario in ("storm found", "leak found", "nocancel found"):
        assert scenario in out
    assert "nothing reported for payments or storefront (healthy)" in out
    report = out.split("Fleetwatch triage:", 1)[1].split("all three culprits found", 1)[0]
    assert "search/" in report and "sessions/" in report and "gateway" in report
    assert "storefront" not in report and "payments" not in report
