"""The atheris harnesses in tests/fuzz/, each run for a few thousand inputs from a seed corpus of real data.

This is the short, bounded mode that runs with every `make test`; docs/reliability.md gives the commands
for long runs. A harness exits non-zero (and prints the input) on any exception or broken invariant.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

REPO = Path(__file__).resolve().parents[2]
FUZZ = REPO / "tests" / "fuzz"
SAMPLES = REPO / "tests" / "data" / "go-runtime"
RUNS = 3000

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                reason="atheris is not installed (pip install -e '.[fuzz]')")


def _seed_gctrace(corpus: Path) -> None:
    for i, path in enumerate(sorted(SAMPLES.glob("*.txt"))):
        lines = path.read_bytes().splitlines()
        for j in range(0, min(len(lines), 60), 12):
            (corpus / f"{i}-{j}").write_bytes(b"\x04" + b"\n".join(lines[j:j + 12]))


def _seed_cancel(corpus: Path) -> None:
    event = {"service": "checkout", "instance": "i", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
             "span_id": "00f067aa0ba902b7", "cancel_at": "2026-01-01T00:00:00Z", "cause": "timeout",
             "stack_depth": 3, "operation": "GET /cart"}
    (corpus / "one").write_bytes(b"\x00" + json.dumps(event).encode())
    (corpus / "array").write_bytes(b"\x00" + json.dumps([event, {**event, "cause": "nope"}, 1]).encode())


def _seed_otlp(corpus: Path) -> None:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "svc"
    line = SAMPLES.joinpath("go1.27.3-forced.txt").read_text().splitlines()[0]
    rl.scope_logs.add().log_records.add(time_unix_nano=1_767_225_600 * 10**9).body.string_value = line
    (corpus / "logs-proto").write_bytes(b"\x00\x00" + request.SerializeToString())
    doc = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                             "scopeLogs": [{"logRecords": [{"timeUnixNano": "1767225600000000000",
                                                            "body": {"stringValue": line}}]}]}]}
    (corpus / "logs-json").write_bytes(b"\x00\x01" + json.dumps(doc).encode())
    for path in sorted((REPO / "tests" / "data" / "otlp").glob("*.json"))[:5]:
        (corpus / path.name).write_bytes(b"\x00\x01" + path.read_bytes())


def _seed_pprof(corpus: Path) -> None:
    for i, path in enumerate(sorted((REPO / "tests" / "data" / "pprof").glob("go1.27-*"))):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        (corpus / path.name).write_bytes(bytes([i, 0]) + data[:8000])


@pytest.mark.parametrize(("harness", "seed"), [
    ("fuzz_gctrace.py", _seed_gctrace), ("fuzz_cancel.py", _seed_cancel), ("fuzz_otlp.py", _seed_otlp),
    ("fuzz_pprof.py", _seed_pprof),
])
def test_harness_finds_nothing_in_a_short_run(harness: str, seed, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seed(corpus)
    proc = subprocess.run(
        [sys.executable, str(FUZZ / harness), str(corpus), f"-runs={RUNS}", "-max_total_time=40", "-max_len=8192",
         "-seed=1", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "Done" in proc.stderr or "DONE" in proc.stderr, proc.stderr[-2000:]
