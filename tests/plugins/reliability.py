"""Fixtures for fault tests: a `fleetwatch run` process that can be SIGKILLed and restarted on the same store
and ports, plain OTLP senders that retry, and a durable Kafka broker (Tansu on an S3 bucket served by a local
moto_server) that keeps topics, data and committed offsets across a broker restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.net import FLEETWATCH, VENV_BIN, free_port, port_open
from tests.plugins.kafka_broker import Broker


def http_get(url: str, timeout: float = 10, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Restartable:
    """`fleetwatch run` on fixed ports and a store of its own; `kill()` + `start()` is a crash and a restart."""

    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None, query: bool = False,
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
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def args(self) -> list[str]:
        dsn = [] if "FLEETWATCH_CLICKHOUSE_DSN" in self.env else ["--clickhouse-dsn", self.dsn]
        query = f"127.0.0.1:{self.query_port}" if self.query_port else ""
        return [FLEETWATCH, "run", *dsn, "--otlp-grpc", self.grpc_endpoint, "--otlp-http",
                f"127.0.0.1:{self.http_port}", "--query-http", query, "--no-jobs", *self.extra_args]

    def start(self, timeout: float = 60.0) -> Restartable:
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
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def sql(self, query: str) -> list[dict[str, Any]]:
        """A query on the store after the process exited (this test process holds another chdb path)."""
        assert not self.alive(), "stop the process before reading its store"
        out = subprocess.run([FLEETWATCH, "sql", "--clickhouse-dsn", self.dsn, "--format", "json", query],
                             env=self.env, capture_output=True, text=True, timeout=120, cwd=self.workdir)
        if out.returncode != 0:
            raise RuntimeError(f"fleetwatch sql failed: {out.stderr}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture
def restartable() -> Iterator[Any]:
    """Factory for `Restartable` processes; all are killed and their directories removed at the end."""
    made: list[Restartable] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def _make(**kw: Any) -> Restartable:
        tmp = tempfile.TemporaryDirectory(prefix="fw-fault-", dir="/tmp")
        dirs.append(tmp)
        proc = Restartable(Path(tmp.name), **kw)
        made.append(proc)
        return proc

    yield _make
    for proc in made:
        proc.kill()
    for tmp in dirs:
        tmp.cleanup()


# -- durable Kafka: Tansu with the s3:// engine on a local moto_server ------------------------------------
class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="moto-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        log = open(os.path.join(self.workdir, "moto.log"), "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not start, see {self.workdir}/moto.log")
            time.sleep(0.05)
        req = urllib.request.Request(f"{self.endpoint}/tansu", method="PUT")  # create the bucket
        with urllib.request.urlopen(req, timeout=10) as response:
            assert response.status == 200
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def durable_broker() -> Iterator[Broker]:
    """A Tansu broker whose storage is an S3 bucket on a local moto_server: restarts keep everything."""
    moto = MotoServer().start()
    env = {"AWS_ENDPOINT": moto.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
    broker = Broker(storage="s3://tansu/", env=env).start()
    try:
        yield broker
    finally:
        broker.stop()
        moto.stop()
