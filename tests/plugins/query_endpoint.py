"""A real `fleetwatch run` process with a seeded embedded store, read through its query endpoint.

The store path is the process's own (chdb allows one per process), seeded before the pipeline starts by a
short-lived subprocess (`python -m tests.plugins.query_endpoint seed DSN DATABASE`) so the test process
never opens that path itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED_SERVICES = ("checkout", "payments")


@dataclass
class RunningPipeline:
    proc: subprocess.Popen
    dsn: str
    database: str
    address: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def seed(dsn: str, database: str) -> None:
    """Migrate and insert a few recent runtime metrics and cancel-events (run in a subprocess)."""
    from pipeline.config import load_settings
    from pipeline.store.client import Store
    from pipeline.store.migrate import context_from_settings, migrate

    settings = load_settings(clickhouse_dsn=dsn, database=database)
    store = Store.from_settings(settings)
    migrate(store, settings.sql_dir, context_from_settings(settings))
    now = datetime.now(UTC).replace(microsecond=0)
    metrics: dict[str, list] = {k: [] for k in ("service", "instance", "ts", "metric", "value", "unit",
                                                 "source_name", "received_at")}
    for s, service in enumerate(SEED_SERVICES):
        for i in range(10):
            metrics["service"].append(service)
            metrics["instance"].append(f"{service}-0")
            metrics["ts"].append(now - timedelta(minutes=10 - i))
            metrics["metric"].append("go.goroutine.count")
            metrics["value"].append(float(100 + 10 * i + s))
            metrics["unit"].append("{goroutine}")
            metrics["source_name"].append("go.goroutine.count")
            metrics["received_at"].append(now)
    store.insert_columns("runtime_metrics", metrics)
    store.close()


@pytest.fixture(scope="module")
def running_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPipeline]:
    from tests.net import free_port

    base = tmp_path_factory.mktemp("pipeline")
    dsn = f"chdb://{base / 'store'}"
    database = "fleet"
    python = sys.executable
    subprocess.run(
        [python, "-m", "tests.plugins.query_endpoint", "seed", dsn, database],
        cwd=REPO, check=True, timeout=120, capture_output=True,
    )
    address = f"127.0.0.1:{free_port()}"
    log_path = base / "run.log"
    env = {**os.environ, "FLEETWATCH_JOBS_ENABLED": "false"}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [python, "-m", "pipeline.cli", "run", "--clickhouse-dsn", dsn, "--database", database,
             "--query-http", address, "--otlp-grpc", "", "--otlp-http", "", "--no-jobs"],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    running = RunningPipeline(proc, dsn, database, address, log_path)
    try:
        _wait_ready(running)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(running: RunningPipeline, attempts: int = 600) -> None:
    """Poll /ping until it answers (bounded: at most `attempts` tries, 0.1 s apart)."""
    for _ in range(attempts):
        if running.proc.poll() is not None:
            raise RuntimeError(f"fleetwatch run exited with {running.proc.returncode}:\n{running.log()}")
        try:
            with urllib.request.urlopen(f"{running.url}/ping", timeout=2) as response:
                if response.read() == b"Ok.\n":
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"query endpoint did not answer:\n{running.log()}")


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "seed":
    seed(sys.argv[2], sys.argv[3])
