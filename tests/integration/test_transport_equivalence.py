"""One line contract on every transport: the same captures through file ingest (a CRI container log),
Kafka (the Tansu broker, one message per line, its plain gc lines parsed by the engine) and OTLP/HTTP (one
log record per line) give the same rows in EVERY output table: gc_events, scavenger_events, pacer_events,
runtime_notices, otel_logs, cancel_events and quarantine.

Each line carries the same observed time on every transport (the CRI record time, the Kafka record
timestamp, the OTLP record time), so every column is compared except the transport-specific ones listed
in TRANSPORT_COLUMNS (docs/schema.md, "Transport columns"). Captures: every real one in
tests/data/go-runtime, the stderr of a real Go 1.19 program (KiB scavenger lines), and a capture of what
log plumbing does to lines (tests/data/plumbing.txt: trailing blanks, prefixes, a cut before the last
field, Go 1.4, torn lines, U+2028/U+0085 inside a line). Each capture is one instance; each transport
writes to a database of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from pipeline.app import RunContext
from pipeline.config import Settings
from pipeline.serve import otlp as otlp_http
from pipeline.sink import BatchingWriter, Sink
from pipeline.sources.files import Input, ingest_stream
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate
from pipeline.telemetry import Telemetry
from tests.net import free_port
from tests.plugins.kafka_pipeline import create_topics, kafka_settings, run_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1] / "data"
GO119 = Path("/usr/lib/go-1.19/bin/go")
SERVICE = "eq"
BASE_MS = 1_796_119_200_000  # 2026-12-01T10:00:00Z
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "cancel_events",
          "quarantine")
# Where a row came from and when it was received; everything else must be equal.
TRANSPORT_COLUMNS = {"source", "received_at", "location", "topic", "partition", "offset", "ingest_batch"}


@pytest.fixture(scope="module")
def go119_stderr(tmp_path_factory: pytest.TempPathFactory) -> str:
    """stderr of a real Go 1.19 program under gctrace=1,scavtrace=1 (Debian's golang-1.19-go)."""
    if not GO119.exists():
        pytest.fail("Debian's Go 1.19 is missing (/usr/lib/go-1.19/bin/go): run `make test`, which installs it")
    out = tmp_path_factory.mktemp("go119")
    env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(out / "cache"), "GOTOOLCHAIN": "local",
           "GOFLAGS": "", "CGO_ENABLED": "0"}
    subprocess.run([str(GO119), "build", "-o", str(out / "scvg119"), "."], cwd=DATA / "go" / "scvg119", env=env,
                   check=True, capture_output=True, timeout=300)
    run = subprocess.run([str(out / "scvg119")], env={**os.environ, "GODEBUG": "gctrace=1,scavtrace=1"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stderr


def captures(go119_stderr: str) -> dict[str, list[str]]:
    found = {p.stem: p.read_text(encoding="utf-8") for p in sorted((DATA / "go-runtime").glob("*.txt"))}
    found["plumbing"] = (DATA / "plumbing.txt").read_text(encoding="utf-8")
    found["go1.19-scvg119"] = go119_stderr
    # Blank lines are left out: a file or Kafka stream counts them and stores nothing, while an OTLP record
    # with a blank body is a record of its own and is kept (docs/schema.md).
    return {name: [line for line in text.split("\n") if line.strip()] for name, text in found.items()}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def times(lines: list[str], instance_index: int) -> list[int]:
    return [BASE_MS + instance_index * 100_000 + i for i in range(len(lines))]


def cri_file(path: Path, lines: list[str], stamps: list[int]) -> None:
    records = []
    for i, (line, ms) in enumerate(zip(lines, stamps, strict=True)):
        if i % 5 == 0 and len(line) > 8:  # written in pieces: P, P, F
            a, b = len(line) // 3, 2 * len(line) // 3
            records += [f"{iso(ms)} stderr P {line[:a]}", f"{iso(ms)} stderr P {line[a:b]}",
                        f"{iso(ms)} stderr F {line[b:]}"]
        else:
            records.append(f"{iso(ms)} stderr F {line}")
    path.write_text("".join(r + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def other_store(settings: Settings) -> Iterator[callable]:
    made: list[Store] = []

    def _make(suffix: str) -> tuple[Settings, Store]:
        own = settings.model_copy(update={"database": f"{settings.database}_{suffix}"})
        st = Store.from_settings(own)
        migrate(st, own.sql_dir, context_from_settings(own))
        made.append(st)
        return own, st

    yield _make
    for st in made:
        st.command(f"DROP DATABASE IF EXISTS {st.database} SYNC")


def table_rows(store: Store, table: str) -> list[str]:
    result = store.query(f"SELECT * FROM {store.database}.{table}")
    rows = []
    for row in result.result_rows:
        kept = {c: v for c, v in zip(result.column_names, row, strict=True) if c not in TRANSPORT_COLUMNS}
        rows.append(json.dumps(kept, sort_keys=True, default=str))
    return sorted(rows)


def cancel_events() -> list[dict[str, object]]:
    """Cancel-events spelled with the schema's names and with the `cancel.*` names, half and half."""
    events = []
    for i in range(6):
        prefix = "cancel." if i % 2 else ""
        events.append({
            "trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", f"{prefix}cause": ["timeout", "canceled"][i % 2],
            f"{prefix}stack_depth": 10 + i, f"{prefix}cancel_at": iso(BASE_MS + i), f"{prefix}operation": f"/op{i}",
        })
    return events


def test_file_kafka_and_otlp_give_the_same_rows_in_every_table(
    settings: Settings, store: Store, other_store, kafka_bootstrap: str, kafka_names, go119_stderr: str,
    tmp_path: Path, kafka_client: str,
) -> None:
    caps = captures(go119_stderr)
    assert any("KiB total" in line for line in caps["go1.19-scvg119"])
    stamped = {name: (lines, times(lines, i)) for i, (name, lines) in enumerate(caps.items())}

    # 1. file ingest: one CRI container log per capture, read by `fleetwatch ingest gctrace`'s code path.
    for name, (lines, stamps) in stamped.items():
        path = tmp_path / f"{name}.log"
        cri_file(path, lines, stamps)
        ingest_stream(store, Input(name=str(path), instance=name), service=SERVICE, start_ns=None)

    # 2. Kafka: one message per line, keyed service/instance, stamped with the line's time.
    kafka_cfg, kafka_store = other_store("kafka")
    # One partition batch for the whole stream (docs/schema.md: after_gc_num starts at 0 in each batch).
    kafka_cfg = kafka_settings(kafka_cfg, kafka_bootstrap, kafka_names, max_poll_records=100_000,
                               batch_max_messages=200_000, batch_max_seconds=30.0, client=kafka_client)
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 1, kafka_names.topic("cancel-events"): 1})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, batch_size=1 << 20)
    for name, (lines, stamps) in stamped.items():
        for line, ms in zip(lines, stamps, strict=True):
            producer.send(topic, line.encode(), key=f"{SERVICE}/{name}".encode(), partition=0, timestamp_ms=ms)
    for event in cancel_events():
        producer.send(kafka_names.topic("cancel-events"), json.dumps(event).encode(), key=f"{SERVICE}/cancel".encode(),
                      partition=0, timestamp_ms=BASE_MS)
    producer.flush()
    producer.close()
    worker = run_worker(kafka_cfg, kafka_store, timeout=120)
    # The plain gc lines went through the engine path (pipeline/sources/kafka/gctrace_engine.py), every other
    # line through the Python normalizer: the rows below must still be the file's.
    assert worker.gctrace_engine is not None and worker.gctrace_engine.engine_lines > 1000

    # 3. OTLP/HTTP protobuf: one request per capture, one record per line, stamped with the line's time.
    otlp_cfg, otlp_store = other_store("otlp")
    otlp_cfg.otlp.http = f"127.0.0.1:{free_port()}"
    telemetry = Telemetry()
    sink = Sink(otlp_store, telemetry)
    writer = BatchingWriter(sink, max_delay=0.02).start()
    receiver = otlp_http.start(RunContext(otlp_cfg, otlp_store, sink, writer, telemetry))
    try:
        for name, (lines, stamps) in stamped.items():
            request = ExportLogsServiceRequest()
            rl = request.resource_logs.add()
            rl.resource.attributes.extend([
                KeyValue(key="service.name", value=AnyValue(string_value=SERVICE)),
                KeyValue(key="service.instance.id", value=AnyValue(string_value=name))])
            records = rl.scope_logs.add().log_records
            for line, ms in zip(lines, stamps, strict=True):
                records.add(time_unix_nano=ms * 1_000_000, observed_time_unix_nano=ms * 1_000_000,
                            body=AnyValue(string_value=line))
            req = urllib.request.Request(f"http://{otlp_cfg.otlp.http}/v1/logs", data=request.SerializeToString(),
                                         method="POST", headers={"Content-Type": "application/x-protobuf"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                assert resp.status == 200
        request = ExportLogsServiceRequest()
        rl = request.resource_logs.add()
        rl.resource.attributes.extend([KeyValue(key="service.name", value=AnyValue(string_value=SERVICE)),
                                       KeyValue(key="service.instance.id", value=AnyValue(string_value="cancel"))])
        records = rl.scope_logs.add().log_records
        for event in cancel_events():
            attrs = [KeyValue(key="event.name", value=AnyValue(string_value="cancel-event"))]
            attrs += [KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))
                      for k, v in event.items()]
            records.add(time_unix_nano=BASE_MS * 1_000_000, attributes=attrs)
        req = urllib.request.Request(f"http://{otlp_cfg.otlp.http}/v1/logs", data=request.SerializeToString(),
                                     method="POST", headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 200
    finally:
        receiver.stop(5)
        writer.stop()
        telemetry.shutdown()

    counts = {}
    for table in TABLES:
        by_file, by_kafka, by_otlp = (table_rows(s, table) for s in (store, kafka_store, otlp_store))
        if table == "cancel_events":  # stderr carries no cancel-events: Kafka and OTLP are compared
            assert by_file == [] and len(by_kafka) == len(cancel_events()) and by_otlp == by_kafka, (by_kafka, by_otlp)
            continue
        counts[table] = len(by_file)
        for name, got in (("kafka", by_kafka), ("otlp", by_otlp)):
            only_file, only_other = sorted(set(by_file) - set(got))[:3], sorted(set(got) - set(by_file))[:3]
            assert got == by_file, f"{table}: {name} differs from file: {only_file} vs {only_other}"
    assert all(n > 0 for n in counts.values()), counts  # every table is exercised
