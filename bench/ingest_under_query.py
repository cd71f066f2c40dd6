"""`python -m bench.ingest_under_query`: OTLP/HTTP export latency of one `fleetwatch run`, first alone, then
while readers run heavy queries on its query endpoint.

Readers and ingestion share one process (the embedded store), so a reader that takes all memory or CPU
could starve exporters; the reader limits of `[query]` are meant to prevent that. This measures it:
`fleetwatch run` (embedded store in a temporary directory, OTLP/HTTP and the query endpoint on loopback,
Kafka off) receives pre-encoded 1,000-record log requests from `--senders` keep-alive connections, each
request timed to its 200. Phase one sends `--requests` alone; phase two sends as many again while
`--readers` clickhouse-connect clients loop over heavy queries: `groupArray` over `numbers()` up to the
memory limit and `count()` scans up to the time limit (set short with `--max-execution-time`). Prints one
JSON line: p50/p99/max latency of each phase, queries finished and how they ended, rows stored.
"""

from __future__ import annotations

import argparse
import http.client
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
from collections import Counter
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from bench import clients

FLEETWATCH = str(Path(sys.executable).parent / "fleetwatch")
HEAVY_QUERIES = (
    "SELECT length(groupArray(number)) FROM numbers(10000000000)",  # grows to the memory limit
    "SELECT count() FROM numbers(1000000000000)",                    # scans to the time limit
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fleetwatch run exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("fleetwatch run never became ready")


def _send(port: int, bodies: list[bytes], senders: int) -> list[float]:
    """POST every body from `senders` keep-alive connections; the seconds each took to its 200."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            for body in mine:
                start = time.perf_counter()
                for _attempt in range(100):
                    conn.request("POST", "/v1/logs", body, {"Content-Type": "application/x-protobuf"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        break
                    if resp.status not in (429, 503):
                        errors.append(f"HTTP {resp.status}")
                        return
                    time.sleep(float(resp.getheader("Retry-After") or 0.2))
                with lock:
                    latencies.append(time.perf_counter() - start)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(bodies[i::senders],)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"the receiver refused requests: {errors[:3]}")
    return latencies


def _readers(port: int, readers: int, stop: threading.Event, outcomes: Counter[str]) -> list[threading.Thread]:
    lock = threading.Lock()

    def run(n: int) -> None:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, send_receive_timeout=600)
        try:
            i = n
            while not stop.is_set():
                sql = HEAVY_QUERIES[i % len(HEAVY_QUERIES)]
                i += 1
                try:
                    client.query(sql)
                    outcome = "finished"
                except ClickHouseError as exc:
                    text = str(exc)
                    outcome = next((code for code in ("MEMORY_LIMIT_EXCEEDED", "TIMEOUT_EXCEEDED",
                                                      "TOO_MANY_SIMULTANEOUS_QUERIES", "TOO_MANY_ROWS")
                                    if code in text), "other error")
                with lock:
                    outcomes[outcome] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(readers)]
    for t in threads:
        t.start()
    return threads


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"requests": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1)}


def _stored(dsn: str) -> int:
    out = subprocess.run([FLEETWATCH, "sql", "--clickhouse-dsn", dsn, "--format", "csv",
                          "SELECT count() FROM fleetwatch.gc_events"], capture_output=True, text=True,
                         timeout=300, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_under_query", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per phase")
    parser.add_argument("--records", type=int, default=1_000, help="log records per request")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--readers", type=int, default=4, help="clients looping over heavy queries")
    parser.add_argument("--max-execution-time", type=float, default=10.0, help="query.max_execution_time, s")
    args = parser.parse_args(argv)

    bodies = list(clients.log_requests(100, args.records, 2 * args.requests))
    alone_bodies, loaded_bodies = bodies[: args.requests], bodies[args.requests:]
    with tempfile.TemporaryDirectory(prefix="fw-ingest-query-") as tmp:
        workdir = Path(tmp)
        otlp_port, query_port = _free_port(), _free_port()
        dsn = f"chdb://{workdir / 'store'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
        env["FLEETWATCH_QUERY__MAX_EXECUTION_TIME"] = str(args.max_execution_time)
        log = open(workdir / "fleetwatch.log", "ab")  # noqa: SIM115 - lives with the process
        fw = subprocess.Popen([FLEETWATCH, "run", "--clickhouse-dsn", dsn, "--otlp-http", f"127.0.0.1:{otlp_port}",
                               "--otlp-grpc", "", "--query-http", f"127.0.0.1:{query_port}"],
                              cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        stop = threading.Event()
        outcomes: Counter[str] = Counter()
        try:
            _wait_ready(otlp_port, fw)
            alone = _summary(_send(otlp_port, alone_bodies, args.senders))
            readers = _readers(query_port, args.readers, stop, outcomes)
            loaded = _summary(_send(otlp_port, loaded_bodies, args.senders))
            stop.set()
            for t in readers:
                t.join(args.max_execution_time * 3 + 60)
            fw.send_signal(signal.SIGTERM)
            code = fw.wait(120)
        finally:
            stop.set()
            if fw.poll() is None:
                fw.kill()
                fw.wait(30)
        stored = _stored(dsn)
    result = {"alone": alone, "under_queries": loaded, "readers": args.readers, "queries": dict(outcomes),
              "max_execution_time_s": args.max_execution_time, "records_sent": len(bodies) * args.records,
              "records_stored": stored, "exit_code": code}
    print(json.dumps(result))
    return 0 if code == 0 and stored == result["records_sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
