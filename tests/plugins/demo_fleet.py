"""The demo fleet's Go program and an OTLP/HTTP capture endpoint to run it against in-process.

The capture endpoint keeps each request body as sent, so a test can pass real Go output through the same
normalizer the receivers use (`pipeline.normalize.otlp`) without needing a `fleetwatch run` process.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FLEET_SRC = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "fleet"


@dataclass
class Capture:
    endpoint: str
    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list[tuple[str, bytes]]:
        with self.lock:
            out, self.bodies = self.bodies, []
        return out


@pytest.fixture(scope="session")
def fleet_binary(build_go) -> Path:
    """The demo fleet program (one binary, -scenario storm|leak|nocancel|healthy)."""
    return build_go(FLEET_SRC)


@pytest.fixture
def otlp_capture() -> Iterator[Capture]:
    """A loopback OTLP/HTTP endpoint that answers 200 and records (path, body) of every POST."""
    capture = Capture(endpoint="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with capture.lock:
                capture.bodies.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    capture.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield capture
    server.shutdown()
    server.server_close()
