"""Fixtures for fault tests: a `fleetwatch run` process that can be SIGKILLed and restarted on the same store
and ports, plain OTLP senders that retry, and a durable Kafka broker (Tansu on an S3 bucket served by a local
moto_server) that keeps topics, data and committed offsets across a broker restart.
"""

from __future__ import annotations

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

from tests.net import VENV_BIN, free_port, port_open
from tests.plugins.kafka_broker import Broker
from tests.process import FleetwatchProcess


def http_get(url: str, timeout: float = 10, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def restartable() -> Iterator[Any]:
    """Factory for processes that tests kill and restart; all are killed and their directories removed."""
    made: list[FleetwatchProcess] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def _make(**kw: Any) -> FleetwatchProcess:
        tmp = tempfile.TemporaryDirectory(prefix="fw-fault-", dir="/tmp")
        dirs.append(tmp)
        proc = FleetwatchProcess(Path(tmp.name), **kw)
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
