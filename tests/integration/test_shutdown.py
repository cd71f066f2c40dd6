"""SIGTERM in every state: `fleetwatch run` stops cleanly, exits 0 and keeps everything it acknowledged.

Each test puts work in flight (official OTLP exporters exporting, a Kafka backlog being consumed, a long
query on the query endpoint, a detection job between its statements), waits on state until that work is
really running, sends SIGTERM, and then checks the exit code and the rows in the store.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from pipeline.config import REPO_SQL_DIR
from tests.plugins.kafka_pipeline import (
    FLEETWATCH,
    committed_total,
    fill_partitions,
    fleetwatch_env,
    store_query,
)
from tests.process import FleetwatchProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (a counter that moves only while it works)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_logs(url: str, service: str, bodies: list[str]) -> int:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = service
    records = rl.scope_logs.add().log_records
    for body in bodies:
        records.add(time_unix_nano=time.time_ns()).body.string_value = body
    req = urllib.request.Request(f"{url}/v1/logs", data=request.SerializeToString(), method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status


# -- (a) OTLP exports in flight --------------------------------------------------------------------------
class RecordingExporter:
    """Wraps an official exporter; remembers the bodies of every export it was answered success for."""

    def __init__(self, inner: HttpLogExporter | GrpcLogExporter, acked: list[str], lock: threading.Lock) -> None:
        self.inner, self.acked, self.lock = inner, acked, lock

    def export(self, batch):  # the LogExporter interface
        result = self.inner.export(batch)
        if result.name == "SUCCESS":  # LogExportResult or, in newer SDKs, LogRecordExportResult
            with self.lock:
                self.acked.extend(str(getattr(item, "log_record", item).body) for item in batch)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_sigterm_during_otlp_exports_keeps_every_acknowledged_record(restartable) -> None:
    fw = restartable().start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    providers = []

    def export_loop(name: str, exporter: HttpLogExporter | GrpcLogExporter) -> None:
        provider = LoggerProvider(resource=Resource.create({"service.name": "sigterm-otlp"}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(RecordingExporter(exporter, acked, lock)))
        providers.append(provider)
        logger = provider.get_logger("shutdown")
        n = 0
        while not stop.is_set():
            logger.emit(body=f"{name} rec{n}")
            n += 1

    exporters = {
        "http-a": HttpLogExporter(endpoint=f"{fw.http_url}/v1/logs", timeout=5),
        "http-b": HttpLogExporter(endpoint=f"{fw.http_url}/v1/logs", timeout=5),
        "grpc-a": GrpcLogExporter(endpoint=fw.grpc_endpoint, insecure=True, timeout=5),
        "grpc-b": GrpcLogExporter(endpoint=fw.grpc_endpoint, insecure=True, timeout=5),
    }
    threads = [threading.Thread(target=export_loop, args=item, daemon=True) for item in exporters.items()]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= 200, 60, "exports to be acknowledged", interval=0.02)
        assert fw.terminate(timeout=60) == 0, fw.log()[-3000:]
    finally:
        stop.set()
    for t in threads:
        t.join(60)
    with lock:
        acknowledged = set(acked)
    rows = fw.sql("SELECT Body AS b, count() AS n FROM fleetwatch.otel_logs "
                  "WHERE ServiceName = 'sigterm-otlp' GROUP BY b")
    stored = {r["b"] for r in rows}
    assert len(acknowledged) >= 200
    assert acknowledged - stored == set(), "records answered success are missing from the store"


# -- (b) a Kafka batch in flight -------------------------------------------------------------------------
def test_sigterm_during_kafka_batches_then_restart_stores_every_message_once(
    tmp_path: Path, kafka_bootstrap, kafka_names, producer, default_kafka_client
) -> None:
    topic = kafka_names.topic("gctrace")
    partitions, per_partition = 3, 3000
    tps = fill_partitions(producer, kafka_bootstrap, topic, partitions, per_partition)
    total = partitions * per_partition
    store_path = tmp_path / "store"
    env = fleetwatch_env(store_path, kafka_names, kafka_bootstrap, client=default_kafka_client)
    env["FLEETWATCH_KAFKA__BATCH_MAX_MESSAGES"] = "50"

    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([FLEETWATCH, "run"], env=env, stdout=subprocess.DEVNULL, stderr=log_file,
                                start_new_session=True)
        try:
            def some_committed() -> bool:
                return committed_total(kafka_bootstrap, kafka_names.group, tps) >= 300 or proc.poll() is not None

            wait_for(some_committed, 90, "batches to be committed", interval=0.05)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert code == 0, log_path.read_text(errors="replace")[-3000:]
    committed = committed_total(kafka_bootstrap, kafka_names.group, tps)
    assert committed < total, "SIGTERM must land mid-consumption"
    stored_now = int(store_query(store_path, "SELECT count() FROM fleetwatch.gc_events")[0][0])
    assert stored_now >= committed, "a committed offset must never be ahead of the stored rows"

    again = subprocess.run([FLEETWATCH, "run", "--until-caught-up"], env=env, capture_output=True, text=True,
                           timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert store_query(store_path, "SELECT count(), uniqExact(instance, gc_num) FROM fleetwatch.gc_events") == \
        [[str(total), str(total)]]


# -- (c) a long query on the query endpoint --------------------------------------------------------------
def test_sigterm_during_a_long_query_exits_cleanly(restartable) -> None:
    fw = restartable(query=True).start()
    bodies = [f"query-load rec{i}" for i in range(2000)]
    assert post_logs(fw.http_url, "sigterm-query", bodies) == 200
    assert fw.proc is not None
    # A query that runs for minutes: a three-way cross join of the rows just stored (8e9 rows to count).
    sql = ("SELECT count() FROM fleetwatch.otel_logs AS a, fleetwatch.otel_logs AS b, fleetwatch.otel_logs AS c "
           "WHERE a.ServiceName = 'sigterm-query'")
    outcome: dict[str, object] = {}

    def long_query() -> None:
        try:
            with urllib.request.urlopen(f"{fw.query_url}/?{urllib.parse.urlencode({'query': sql})}",
                                        timeout=120) as resp:
                outcome["status"] = resp.status
        except Exception as exc:  # cancelled or cut off by the shutdown: either is fine for the reader
            outcome["error"] = repr(exc)

    before = cpu_seconds(fw.proc.pid)
    reader = threading.Thread(target=long_query, daemon=True)
    reader.start()
    # Running, not queued: the process burns CPU on it.
    wait_for(lambda: cpu_seconds(fw.proc.pid) - before >= 1.0 or not reader.is_alive(), 60,
             "the query to be running", interval=0.05)
    assert reader.is_alive(), f"the query ended before SIGTERM: {outcome}"
    assert fw.terminate(timeout=60) == 0, fw.log()[-3000:]
    reader.join(30)
    rows = fw.sql("SELECT count() AS n FROM fleetwatch.otel_logs WHERE ServiceName = 'sigterm-query'")
    assert rows == [{"n": 2000}]


# -- (d) a detection job in flight -----------------------------------------------------------------------
class FleetwatchWithJobs(FleetwatchProcess):
    def args(self) -> list[str]:
        return [a for a in super().args() if a != "--no-jobs"]


def test_sigterm_during_a_job_run_stops_at_a_statement_boundary(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(REPO_SQL_DIR, sql_dir)
    # A job of three statements of about three seconds each; it sorts first, so it runs first.
    slow = "SELECT sum(sleepEachRow(0.02)) FROM numbers(150) SETTINGS max_block_size = 1;\n"
    (sql_dir / "jobs" / "aa_slow.sql").write_text(slow * 3)
    (tmp_path / "fw").mkdir()
    fw = FleetwatchWithJobs(tmp_path / "fw", {"FLEETWATCH_SQL_DIR": str(sql_dir)}, query=True)
    try:
        fw.start()
        run_job_until_sigterm(fw)
    finally:
        fw.kill()
    out = fw.sql_many({
        "runs": "SELECT status, window_start FROM fleetwatch.job_runs WHERE job = 'aa_slow'",
        "logs": "SELECT count() AS n FROM fleetwatch.otel_logs WHERE ServiceName = 'sigterm-job'",
    })
    assert out["logs"] == [{"n": 100}]
    # The interrupted window is recorded as skipped, never as ok: the watermark stays and it runs again.
    skipped = {r["window_start"] for r in out["runs"] if r["status"] == "skipped"}
    ok = {r["window_start"] for r in out["runs"] if r["status"] == "ok"}
    assert skipped, out["runs"]
    assert not skipped & ok, out["runs"]


def run_job_until_sigterm(fw: FleetwatchProcess) -> None:
    assert post_logs(fw.http_url, "sigterm-job", [f"job-load rec{i}" for i in range(100)]) == 200

    def claimed() -> bool:
        query = urllib.parse.urlencode({"query": "SELECT count() FROM fleetwatch.job_leases WHERE job = 'aa_slow'"})
        with urllib.request.urlopen(f"{fw.query_url}/?{query}", timeout=60) as resp:
            return int(resp.read().strip() or 0) > 0

    wait_for(claimed, 90, "the slow job to start", interval=0.1)
    started = time.monotonic()
    assert fw.terminate(timeout=60) == 0, fw.log()[-3000:]
    assert time.monotonic() - started < 20, "stopping waited for the whole job instead of one statement"


# -- (e) while the store opens and migrates --------------------------------------------------------------
def test_sigterm_while_the_store_opens_exits_cleanly(restartable) -> None:
    fw = restartable()
    fw.proc = subprocess.Popen(fw.args(), cwd=fw.workdir, env=fw.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    # The store directory appears when the engine opens it, after the signal handlers are in place.
    wait_for(lambda: fw.store_path.exists() or fw.proc.poll() is not None, 60, "the store to be opened",
             interval=0.01)
    assert fw.terminate(timeout=60) == 0
    tables = fw.sql("SELECT count() AS n FROM system.tables WHERE database = 'fleetwatch' AND name = 'otel_logs'")
    assert tables == [{"n": 1}]  # the migrations that were running completed; the store opens again
