"""A real `fleetwatch run` subprocess for tests: its own embedded store, free loopback ports.

chdb allows one store path per process and the test session already holds one, so the pipeline under test
runs as a subprocess with a path of its own; tests read what it stored after it has exited, through short
subprocesses. `kill()` then `start()` on the same object is a crash and a restart on the same store and ports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
    """`fleetwatch run` with OTLP/gRPC and OTLP/HTTP (and optionally the query endpoint), no jobs."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, *, query: bool = False,
                 extra_args: list[str] | None = None) -> None:
        self.workdir = workdir
        self.store_path = workdir / "store"
        self.dsn = f"chdb://{self.store_path}"
        self.grpc_port, self.http_port = free_port(), free_port()
        self.query_port = free_port() if query else None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETWATCH_", "OTEL_"))}
        self.env.update(env or {})
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "fleetwatch.log"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    http_url = http_endpoint

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def args(self) -> list[str]:
        dsn = [] if "FLEETWATCH_CLICKHOUSE_DSN" in self.env else ["--clickhouse-dsn", self.dsn]
        query = f"127.0.0.1:{self.query_port}" if self.query_port else ""
        return [FLEETWATCH, "run", *dsn, "--otlp-grpc", self.grpc_endpoint, "--otlp-http",
                f"127.0.0.1:{self.http_port}", "--query-http", query, "--no-jobs", *self.extra_args]

    def start(self, timeout: float = 60.0) -> FleetwatchProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(self.args(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        ports = [self.grpc_port, self.http_port] + ([self.query_port] if self.query_port else [])
        deadline = time.monotonic() + timeout
        while not all(port_open(p) for p in ports):
            if self.proc.poll() is not None:
                raise RuntimeError(f"fleetwatch run exited with {self.proc.returncode}:\n{self.log()[-5000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"fleetwatch run did not open its ports:\n{self.log()[-5000:]}")
            time.sleep(0.05)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code (the process flushes before it exits)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def sql_many(self, queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        """Run several queries in one short process (opening the embedded store costs seconds)."""
        assert not self.alive(), "stop the process before reading its store"
        out = subprocess.run(
            [sys.executable, "-c", _SQL_MANY, self.dsn], input=json.dumps(queries), env=self.env,
            capture_output=True, text=True, timeout=120, cwd=self.workdir,
        )
        if out.returncode != 0:
            raise RuntimeError(f"queries failed: {out.stderr}")
        return json.loads(out.stdout)

    def sql(self, query: str) -> list[dict[str, Any]]:
        """A query on the stopped process's store; rows as dicts."""
        assert not self.alive(), "stop the process before reading its store"
        out = subprocess.run([FLEETWATCH, "sql", "--clickhouse-dsn", self.dsn, "--format", "json", query],
                             env=self.env, capture_output=True, text=True, timeout=120, cwd=self.workdir)
        if out.returncode != 0:
            raise RuntimeError(f"fleetwatch sql failed: {out.stderr}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
