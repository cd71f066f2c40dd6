"""A real `fleetwatch run` process with its OTLP receivers, for tests that send with the official exporters.

The process gets its own embedded store path (chdb allows one path per process, and the test session
already holds another), free loopback ports, no query endpoint and no jobs. Tests read what it stored
after it has exited, through `fleetwatch sql` in a short subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.net import FLEETWATCH, free_port, port_open

_SQL_MANY = """
import json, sys
from pipeline.config import load_settings
from pipeline.present import _json_value
from pipeline.store.client import Store
store = Store.from_settings(load_settings(clickhouse_dsn=sys.argv[1]))
out = {}
for name, sql in json.load(sys.stdin).items():
    result = store.query(sql)
    out[name] = [{c: _json_value(v) for c, v in zip(result.column_names, row)} for row in result.result_rows]
print(json.dumps(out))
"""


class FleetwatchProcess:
    """`fleetwatch run` with OTLP/gRPC and OTLP/HTTP on free ports and a store of its own."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.store_path = workdir / "store"
        self.dsn = f"chdb://{self.store_path}"
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETWATCH_", "OTEL_"))}
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "fleetwatch.log"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0) -> FleetwatchProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [FLEETWATCH, "run", "--clickhouse-dsn", self.dsn, "--otlp-grpc", self.grpc_endpoint,
             "--otlp-http", f"127.0.0.1:{self.http_port}", "--query-http", "", "--no-jobs"],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not (port_open(self.grpc_port) and port_open(self.http_port)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"fleetwatch run exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"fleetwatch run did not open its ports:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code (the process flushes before it exits)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def sql_many(self, queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        """Run several queries in one short process (opening the embedded store costs seconds)."""
        assert self.proc is None or self.proc.poll() is not None, "stop the process before reading its store"
        out = subprocess.run(
            [sys.executable, "-c", _SQL_MANY, self.dsn], input=json.dumps(queries), env=self.env,
            capture_output=True, text=True, timeout=120, cwd=self.workdir,
        )
        if out.returncode != 0:
            raise RuntimeError(f"queries failed: {out.stderr}")
        return json.loads(out.stdout)

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Run a query on the stopped process's store; rows as dicts."""
        assert self.proc is None or self.proc.poll() is not None, "stop the process before reading its store"
        out = subprocess.run(
            [FLEETWATCH, "sql", "--clickhouse-dsn", self.dsn, "--format", "json", query],
            env=self.env, capture_output=True, text=True, timeout=120, cwd=self.workdir,
        )
        if out.returncode != 0:
            raise RuntimeError(f"fleetwatch sql failed: {out.stderr}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture
def fleetwatch_run() -> Iterator[Any]:
    """Factory: `fleetwatch_run(env={...})` starts a process; every one started is killed at the end."""
    started: list[FleetwatchProcess] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def _start(env: dict[str, str] | None = None) -> FleetwatchProcess:
        tmp = tempfile.TemporaryDirectory(prefix="fw-otlp-", dir="/tmp")
        dirs.append(tmp)
        proc = FleetwatchProcess(Path(tmp.name), env)
        started.append(proc)
        return proc.start()

    yield _start
    for proc in started:
        proc.kill()
    for tmp in dirs:
        tmp.cleanup()
