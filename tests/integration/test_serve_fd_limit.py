"""File-descriptor exhaustion: `fleetwatch run` under `ulimit -n 1024` (soft and hard), flooded with idle
connections, answers 503 + Retry-After (which exporters retry), never 500, and stores what the exporter
retries once the flood is gone. A soft limit below the hard one is raised at start.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.integration.test_serve_attacks import raw_exchange, status_of
from tests.process import FleetwatchProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


class LimitedProcess(FleetwatchProcess):
    """`fleetwatch run` started by a shell that first sets `ulimit -n`."""

    def __init__(self, workdir: Path, limit: str) -> None:
        super().__init__(workdir)
        self.limit = limit

    def args(self) -> list[str]:
        return ["/bin/sh", "-c", f'ulimit {self.limit} && exec "$@"', "sh", *super().args()]


def test_fd_exhaustion_answers_503_then_exports_land(tmp_path: Path) -> None:
    proc = LimitedProcess(tmp_path, "-n 1024").start()
    flood: list[socket.socket] = []
    try:
        # far more connections than a quarter of 1024: the ones past the cap are answered 503 or closed,
        # so sockets never take the descriptors the engine needs for its parts
        for _ in range(450):
            flood.append(socket.create_connection(("127.0.0.1", proc.http_port), timeout=30))
        answers = [raw_exchange(proc.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(20)]
        statuses = {status_of(a) for a in answers}
        assert statuses == {503}, statuses
        assert all(b"retry-after: 1" in a.lower() for a in answers)

        provider = LoggerProvider(resource=Resource.create({"service.name": "fd-flood"}))
        memory = InMemoryLogRecordExporter()
        provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
        for i in range(50):
            provider.get_logger("t").emit(body=f"under fd pressure {i}")
        exporter = HttpLogExporter(endpoint=f"{proc.http_url}/v1/logs", timeout=60)
        result: list[LogRecordExportResult] = []
        sender = threading.Thread(target=lambda: result.append(exporter.export(memory.get_finished_logs())))
        sender.start()
        # the exporter is being refused (and retrying) while the flood holds; then the flood goes away
        answer = raw_exchange(proc.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(answer) == 503
        for conn in flood:
            conn.close()
        flood.clear()
        sender.join(90)
        assert result == [LogRecordExportResult.SUCCESS]
        exporter.shutdown()
        provider.shutdown()
        assert status_of(raw_exchange(proc.http_port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")) == 200
        assert proc.terminate() == 0
    finally:
        for conn in flood:
            conn.close()
        proc.kill()
    rows = proc.sql_many({"n": "SELECT count() AS n FROM fleetwatch.otel_logs WHERE ServiceName = 'fd-flood'"})
    assert rows["n"] == [{"n": 50}]


def test_soft_fd_limit_is_raised_to_the_hard_limit() -> None:
    code = ("import resource; from pipeline.serve.server import raise_fd_limit; "
            "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[1])")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["/bin/sh", "-c", f'ulimit -Sn 256 && exec "{sys.executable}" -c "{code}"'],
                             capture_output=True, text=True, cwd=REPO, timeout=60, env={"HOME": tmp})
    assert out.returncode == 0, out.stderr
    soft, hard = (int(x) for x in out.stdout.split())
    assert soft == hard > 256


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_unauthenticated_large_bodies_do_not_grow_memory(tmp_path: Path) -> None:
    """150 clients each pushing a 16 MiB body without the token: every one is answered 401 from its headers,
    and the process's resident memory grows by far less than one body."""
    proc = FleetwatchProcess(tmp_path, {"FLEETWATCH_OTLP_TOKEN": "secret-token"}).start()
    try:
        assert proc.proc is not None
        before = _rss_kib(proc.proc.pid)
        body = b"\0" * (16 * 1024 * 1024)
        head = (b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        statuses: list[int] = []
        lock = threading.Lock()

        def push() -> None:
            with socket.create_connection(("127.0.0.1", proc.http_port), timeout=60) as conn:
                try:
                    conn.sendall(head + body)
                except OSError:
                    pass  # the server answered and closed while the body was still being sent
                answer = b""
                try:
                    answer = conn.recv(4096)
                except OSError:
                    pass
            with lock:
                statuses.append(status_of(answer))

        threads = [threading.Thread(target=push) for _ in range(150)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        grown_mib = (_rss_kib(proc.proc.pid) - before) / 1024
        assert grown_mib < 64, grown_mib  # 150 bodies read would be 2.4 GB
        assert statuses.count(401) >= 100, statuses  # a reset may beat the answer to a client still sending
        assert status_of(raw_exchange(proc.http_port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")) == 200
    finally:
        proc.kill()
