"""The pprofleak Go program (tests/data/go/pprofleak): build it with either toolchain, run it, fetch its
profiles. Shared by the profile tests and by tests/data/pprof/capture.py, which saves the unit-test captures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.net import VENV_BIN, free_port

SRC = Path(__file__).resolve().parent / "data" / "go" / "pprofleak"
GO119 = "/usr/lib/go-1.19/bin/go"


def build(go: str, out: Path, env: dict[str, str] | None = None) -> Path:
    """`go build` the program with the toolchain `go` (GOPATH mode: stdlib only, offline)."""
    full = {**os.environ, **(env or {}), "GO111MODULE": "off", "CGO_ENABLED": "0", "GOFLAGS": ""}
    if "GOCACHE" not in (env or {}):
        # A build cache per toolchain that outlives the run, so net/http is compiled once, not per build.
        full["GOCACHE"] = str(VENV_BIN.parent / "go-cache" / f"build-{Path(go).resolve().parent.parent.name}")
    proc = subprocess.run([go, "build", "-o", str(out), "."], cwd=SRC, env=full, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"go build failed:\n{proc.stderr}")
    return out


class Target:
    """One running pprofleak process on a free loopback port."""

    def __init__(self, binary: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(binary), "-addr", f"127.0.0.1:{self.port}", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/debug/pprof/")
                return
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("pprofleak did not start serving") from None
                time.sleep(0.05)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=30) as resp:
            return resp.read()

    def sigquit(self) -> str:
        """SIGQUIT: the runtime prints every goroutine's traceback to stderr and exits."""
        self.proc.send_signal(signal.SIGQUIT)
        _, err = self.proc.communicate(timeout=30)
        return err.decode("utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)
