"""A Go program's gctrace stderr sent as OTLP log bodies gives exactly the gc_events that
`fleetwatch ingest gctrace` gives for the same lines.

Both paths anchor `@seconds` differently: the file path on `--start-time`, the OTLP path on each record's
time (the line was observed when the cycle ended: ts = observed - the cycle's wall clock). The records are
stamped start + @seconds + (c1+c2+c3) ms, so both must land on the same ts, and every other column too.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.net import FLEETWATCH

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROGRAM = Path(__file__).resolve().parent.parent / "data" / "otlp" / "gcchurn"
GC_TIMES = re.compile(r"gc \d+ @(\d+\.\d+)s \d+%[^:]*: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock")
COMPARED = ("instance, toString(ts) AS ts_text, toString(process_start) AS start_text, gc_num, since_start_s"
            ", gc_cpu_pct, stw_sweep_term_ms, mark_ms, stw_mark_term_ms, "
            "cpu_sweep_term_ms, cpu_assist_ms, cpu_background_ms, cpu_idle_ms, cpu_mark_term_ms, heap_start_mb, "
            "heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, globals_mb, procs, forced, leak_check, "
            "process_start, format")
# `incarnation` is the one documented difference (docs/schema.md): a restart counter within one ingested
# stream, 1, 2, ... from a file, 0 in observed mode where each record carries its own time.


def whole_gc_line(lines: list[str], i: int) -> str:
    """The gc line starting at lines[i], rejoined when application output was written into its middle.

    `runtime.GC()` returns before the runtime finishes printing the cycle's line, so the program's next
    write can land inside it (`gc 62 @0.046s 16gcchurn: forced cycle 2` then `% : 0.1+...`).
    """
    line = lines[i]
    if GC_TIMES.search(line) or "gc " not in line:
        return line
    for follower in lines[i + 1 : i + 3]:
        for cut in range(len(line), 0, -1):
            joined = line[:cut] + follower
            if GC_TIMES.search(joined) and re.search(r" P( \(forced\))?$", joined):
                return joined
    return line


def observed_times(lines: list[str], start_ns: int) -> list[int]:
    """When each line was 'seen': the end of its cycle for gc lines, the previous line's time otherwise."""
    times, last = [], start_ns
    for i in range(len(lines)):
        m = GC_TIMES.search(whole_gc_line(lines, i))
        if m:
            since, c1, c2, c3 = (Decimal(x) for x in m.groups())
            last = start_ns + int(since * 10**9) + int((c1 + c2 + c3) * 10**6)
        times.append(last)
    return times


def test_otlp_log_bodies_equal_file_ingest(build_go, fleetwatch_run, tmp_path: Path) -> None:
    binary = build_go(PROGRAM)
    run = subprocess.run([str(binary)], env={**os.environ, "GODEBUG": "gctrace=1"}, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    num_gc = int(re.search(r"numgc=(\d+)", run.stderr).group(1))
    assert num_gc >= 5 and sum(1 for line in lines if line.startswith("gc ")) == num_gc

    start_ns = (time.time_ns() // 10**9 - 600) * 10**9  # whole seconds, ten minutes ago (inside the TTL)
    start_iso = datetime.fromtimestamp(start_ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    fw = fleetwatch_run()
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend([KeyValue(key="service.name", value=AnyValue(string_value="eq-otlp")),
                                   KeyValue(key="service.instance.id", value=AnyValue(string_value="p1"))])
    records = rl.scope_logs.add().log_records
    for line, ts in zip(lines, observed_times(lines, start_ns), strict=True):
        records.add(time_unix_nano=ts, body=AnyValue(string_value=line))
    req = urllib.request.Request(f"{fw.http_endpoint}/v1/logs", data=request.SerializeToString(), method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
    assert fw.terminate() == 0, fw.log()

    stderr_file = tmp_path / "gcchurn.stderr"
    stderr_file.write_text(run.stderr)
    ingest = subprocess.run(
        [FLEETWATCH, "ingest", "gctrace", str(stderr_file), "--clickhouse-dsn", fw.dsn, "--service", "eq-file",
         "--instance", "p1", "--start-time", start_iso],
        env=fw.env, capture_output=True, text=True, timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr

    got = fw.sql_many({
        "file": f"SELECT {COMPARED} FROM fleetwatch.gc_events WHERE service = 'eq-file' ORDER BY gc_num",
        "otlp": f"SELECT {COMPARED} FROM fleetwatch.gc_events WHERE service = 'eq-otlp' ORDER BY gc_num",
        "inc": "SELECT service, groupUniqArray(incarnation) AS inc FROM fleetwatch.gc_events "
               "GROUP BY service ORDER BY service",
        "app": "SELECT Body FROM fleetwatch.otel_logs WHERE ServiceName = 'eq-otlp' ORDER BY Timestamp, Body",
    })
    by_file, by_otlp = got["file"], got["otlp"]
    assert len(by_file) == num_gc and len(by_otlp) == num_gc
    assert got["inc"] == [{"service": "eq-file", "inc": [1]}, {"service": "eq-otlp", "inc": [0]}]
    for file_row, otlp_row in zip(by_file, by_otlp, strict=True):
        diff = {k: (v, otlp_row[k]) for k, v in file_row.items() if otlp_row[k] != v}
        assert not diff, f"gc {file_row['gc_num']}: (file, otlp) differ in {diff}"
    expected_app = {"gcchurn: starting", "gcchurn: forced cycle 0", f"gcchurn: done numgc={num_gc}"}
    assert {r["Body"] for r in got["app"]} >= expected_app
