"""`python -m bench.run --quick|--full`: every path, the two references, one table, a dated record.

Each path runs in a worker process of its own with a fresh embedded store in a temporary directory
(bench/worker.py); the load (Kafka producer, OTLP senders) runs here, prepared before the clock starts.
The table is printed and appended, with the exact command, load average and machine, to
docs/benchmarks.md. Wall-clock rates depend on what else the machine runs; CPU seconds per million
lines depend much less on it, so both are shown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import clients, data
from bench.measure import Result, cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
RUNS_HEADING = "## Recorded runs"


@dataclass(frozen=True)
class Sizes:
    file_instances: int
    file_lines_per_instance: int
    big_file_instances: int         # the same per-instance length, more instances: peak RSS must stay flat
    naive_sample: int
    kafka_one_line_messages: int
    kafka_batched_lines: int
    kafka_lines_per_message: int
    otlp_requests: int
    otlp_records_per_request: int
    jobs_instances: int
    jobs_seconds: int
    # The profile scraper: targets, seconds between scrapes of one target, measured seconds.
    scrape_targets: int = 200
    scrape_interval: float = 10.0
    scrape_seconds: float = 20.0
    # Ingest latency while heavy queries run: requests per phase, reader clients, their time limit (s).
    iuq_requests: int = 100
    iuq_readers: int = 4
    iuq_max_execution_time: float = 5.0
    # OTLP rows against the commit before the serving layer: interleaved pairs.
    ba_pairs: int = 4
    # The *_big OTLP rows send the same requests this many times (bench.clients.in_round): the sustained rate, with
    # the start and the last segment's store a smaller share of the run, and the receiver's peak RSS at more input.
    otlp_big_rounds: int = 2


QUICK = Sizes(file_instances=4, file_lines_per_instance=50_000, big_file_instances=8, naive_sample=200,
              kafka_one_line_messages=40_000, kafka_batched_lines=200_000, kafka_lines_per_message=1_000,
              otlp_requests=100, otlp_records_per_request=1_000, jobs_instances=1_000, jobs_seconds=3_600)
FULL = Sizes(file_instances=10, file_lines_per_instance=100_000, big_file_instances=100, naive_sample=2_000,
             kafka_one_line_messages=300_000, kafka_batched_lines=2_000_000, kafka_lines_per_message=1_000,
             otlp_requests=1_000, otlp_records_per_request=1_000, jobs_instances=1_000, jobs_seconds=3_600,
             scrape_targets=1_000, scrape_interval=30.0, scrape_seconds=60.0,
             iuq_requests=1_000, iuq_readers=4, iuq_max_execution_time=20.0, otlp_big_rounds=5)


def _kafka_overrides() -> dict[str, object]:
    """`[kafka]` settings for the Kafka rows from BENCH_KAFKA (JSON), to compare settings on one input, e.g.
    BENCH_KAFKA='{"write_threads": 0}'."""
    return json.loads(os.environ.get("BENCH_KAFKA", "{}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_worker(scenario: str, args: dict, timeout: float = 900) -> Result:
    """Run one worker; BENCH_WRAP (e.g. "py-spy record -o /tmp/x.svg --") prefixes its command line."""
    wrap = shlex.split(os.environ.get("BENCH_WRAP", ""))
    proc = subprocess.run([*wrap, sys.executable, "-m", "bench.worker", scenario, json.dumps(args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{scenario} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return Result.parse(proc.stdout)


class Bench:
    def __init__(self, sizes: Sizes, tmp: Path, only: set[str] | None, kafka_client: str | None = None) -> None:
        self.sizes = sizes
        self.kafka_client = kafka_client  # `kafka.client` of the Kafka rows (None: the settings' default)
        self.tmp = tmp
        self.only = only
        self.results: dict[str, Result] = {}
        self.jobs: dict | None = None
        self.notes: list[str] = []

    def wanted(self, name: str) -> bool:
        return self.only is None or name in self.only

    def dsn(self, name: str) -> str:
        return f"chdb://{self.tmp / ('store-' + name)}"

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def record(self, key: str, result: Result) -> None:
        self.results[key] = result
        self.say(f"{key}: {result.units} in, {result.rows} rows, {result.wall_s:.2f} s, "
                 f"{result.rate:,.0f}/s, CPU {result.cpu_per_million:.1f} s/M, RSS {result.peak_rss_mb:.0f} MB")
        if "join_s" in result.extra:  # Kafka rows: the group join apart
            self.say(f"{key}: group join {result.extra['join_s']:.2f} s, then "
                     f"{result.extra['assigned_rate']:,.0f}/s from the assignment to caught up (first write stored "
                     f"at {result.extra['first_write_s']:.2f} s, last at {result.extra.get('last_write_s', 0):.2f})")
        threads = result.extra.get("threads_cpu_s_per_m")
        if threads:  # BENCH_THREADS=1
            self.say(f"{key}: CPU s per M by thread: "
                     + ", ".join(f"{name} {cpu}" for name, cpu in sorted(threads.items(), key=lambda kv: -kv[1])))
        if result.extra.get("parts"):  # bench/parts.py: what the row's inserts and merges wrote, per table
            from bench.parts import describe

            self.say(f"{key}: parts: {describe(result.extra['parts'])}")

    # -- file ingest and the references -------------------------------------------------------------------
    def files(self, instances: int) -> tuple[list[str], int, str]:
        s = self.sizes
        directory = self.tmp / f"files-{instances}"
        paths = sorted(str(p) for p in directory.glob("*.log"))
        if not paths:
            paths = [str(p) for p in data.write_instance_files(directory, instances, s.file_lines_per_instance)]
        start = datetime.now(UTC) - timedelta(seconds=data.span_seconds(s.file_lines_per_instance) + 600)
        return paths, instances * s.file_lines_per_instance, start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def file_paths(self) -> None:
        s = self.sizes
        paths, lines, start = self.files(s.file_instances)
        if self.wanted("bare"):
            self.record("bare", run_worker("bare", {"dsn": self.dsn("bare"), "paths": paths, "lines": lines}))
        if self.wanted("naive"):
            self.record("naive", run_worker("naive", {"dsn": self.dsn("naive"), "paths": paths,
                                                      "start_time": start, "sample": s.naive_sample}))
        if self.wanted("file"):
            self.record("file", run_worker("file", {"dsn": self.dsn("file"), "paths": paths, "start_time": start,
                                                    "lines": lines}))
        if self.wanted("file_store_bare"):
            # The engine's bound beside the `file` row: the command's own statements on its own chunks, replayed with
            # its concurrency, nothing of Fleetwatch's Python in between (bench/file_bare.py).
            self.record("file_store_bare", run_worker("file_store_bare", {
                "dsn": self.dsn("file-store-bare"), "paths": paths, "start_time": start, "lines": lines}))
        if self.wanted("file_python"):
            self.record("file_python", run_worker("file_python", {"dsn": self.dsn("file-python"), "paths": paths,
                                                                  "start_time": start, "lines": lines}))
        if self.wanted("engine_parse"):
            self.record("engine_parse", run_worker("engine_parse", {"dsn": self.dsn("engine"), "paths": paths,
                                                                    "start_time": start, "lines": lines}))
        if self.wanted("tail"):
            self.record("tail", run_worker("tail", {"dsn": self.dsn("tail"), "paths": paths, "lines": lines,
                                                    "dir": str(self.tmp / "tail"), "slice_lines": 5_000}))
        if self.wanted("file_big"):
            big, big_lines, start = self.files(s.big_file_instances)
            self.record("file_big", run_worker("file", {"dsn": self.dsn("file-big"), "paths": big,
                                                        "start_time": start, "lines": big_lines}))

    # -- Kafka --------------------------------------------------------------------------------------------
    def kafka_paths(self) -> None:
        shapes = ("kafka_lines", "kafka_batched")
        # kafka_store_bare runs the store's bound for both shapes; kafka_store_bare_lines / _batched for one only.
        bounds = ("kafka_consume_bare", "kafka_store_bare", "kafka_store_bare_lines", "kafka_store_bare_batched")
        if not any(self.wanted(k) for key in shapes for k in (key, f"{key}_python")) \
                and not any(self.wanted(b) for b in (*bounds, "kafka_lines_big")):
            return
        sys.path.insert(0, str(ROOT))
        from tests.plugins.kafka_broker import Broker

        s = self.sizes
        broker = Broker().start()
        broker_pid = broker.proc.pid if broker.proc is not None else None
        try:
            # The *_python rows are the reference: the same topic read with the gctrace engine off. The bounds
            # (bench/kafka_bare.py): the client alone on the same topic, the store's statement alone on its values.
            cases = [("kafka_lines", 1, s.kafka_one_line_messages), ("kafka_batched", s.kafka_lines_per_message,
                                                                      s.kafka_batched_lines)]
            if self.wanted("kafka_lines_big"):  # the product alone, on a backlog five times as long
                cases.append(("kafka_lines_big", 1, s.kafka_one_line_messages * 5))
            for key, per_message, lines in cases:
                shape = key.split("_", 1)[1]
                big = key.endswith("_big")
                wanted = [k for k in ((key,) if big else (key, f"{key}_python")) if self.wanted(k)]
                name = f"kafka_store_bare_{shape}"
                if not big and (self.wanted("kafka_store_bare") or self.wanted(name)):
                    result = run_worker("kafka_store_bare", {"dsn": self.dsn(name), "lines": lines,
                                                             "per_message": per_message,
                                                             "kafka": _kafka_overrides()})
                    result.name = name
                    self.record(name, result)
                if not wanted and (big or not self.wanted("kafka_consume_bare")):
                    continue
                instances = 100
                topic = f"bench-{key}-{uuid.uuid4().hex[:6]}"
                t0 = time.perf_counter()
                messages = clients.produce_gctrace(broker.bootstrap, topic, instances=instances,
                                                   lines_per_instance=lines // instances,
                                                   lines_per_message=per_message)
                self.say(f"{key}: produced {messages} messages in {time.perf_counter() - t0:.1f} s")
                if self.wanted("kafka_consume_bare") and not big:
                    name = f"kafka_consume_bare_{shape}"
                    result = run_worker("kafka_consume_bare", {
                        "bootstrap": broker.bootstrap, "topic": topic, "group": f"g-{name}-{topic}", "lines": lines,
                        "messages": messages, "broker_pid": broker_pid, "kafka": _kafka_overrides()})
                    result.name = name
                    self.record(name, result)
                for name in wanted:
                    engine = not name.endswith("_python")
                    result = run_worker("kafka", {"dsn": self.dsn(name), "bootstrap": broker.bootstrap,
                                                  "topic": topic, "group": f"g-{name}-{topic}", "lines": lines,
                                                  "broker_pid": broker_pid,
                                                  "kafka": {"gctrace_engine": engine, **self._client(),
                                                            **_kafka_overrides()}})
                    result.name = name
                    self.record(name, result)
        finally:
            broker.stop()

    def _client(self) -> dict[str, str]:
        return {"client": self.kafka_client} if self.kafka_client else {}

    # -- OTLP ---------------------------------------------------------------------------------------------
    def otlp_paths(self) -> None:
        s = self.sizes
        # The *_python rows are the reference: the same requests with the gctrace engine off.
        # The *_bare rows are the transport's bound: the same port and clients, requests decoded and answered, nothing
        # stored (bench/worker.py `_answer_only`).
        transports = [(name, name.split("_")[1], not name.endswith("_python"))
                      for name in ("otlp_http", "otlp_grpc", "otlp_http_python", "otlp_grpc_python",
                                   "otlp_http_bare", "otlp_grpc_bare", "otlp_http_big", "otlp_grpc_big")
                      if self.wanted(name)]
        if not transports:
            self.otlp_store_path()
            return
        bodies = list(clients.log_requests(100, s.otlp_records_per_request, s.otlp_requests))
        for name, transport, engine in transports:
            rounds = s.otlp_big_rounds if name.endswith("_big") else 1
            records = s.otlp_requests * s.otlp_records_per_request * rounds
            port = _free_port()
            proc = subprocess.Popen(
                [*shlex.split(os.environ.get("BENCH_WRAP", "")), sys.executable, "-m", "bench.worker", "otlp",
                 json.dumps({"dsn": self.dsn(name.replace("_", "-")), "transport": transport, "port": port,
                             "engine": engine, "name": name, "bare": name.endswith("_bare")})],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            try:
                assert proc.stdin is not None and proc.stdout is not None
                self._expect(proc, "READY")
                proc.stdin.write("mark\n")
                proc.stdin.flush()
                self._expect(proc, "MARKED")
                send = clients.send_http if transport == "http" else clients.send_grpc
                client_cpu = cpu_seconds()
                wall = send(port, bodies, rounds=rounds)
                client_cpu = cpu_seconds() - client_cpu  # the 16 client threads (this process does nothing else)
                out, _ = proc.communicate(f"stop {records} {wall}\n", timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
            if proc.returncode != 0:
                raise RuntimeError(f"otlp {transport} worker failed ({proc.returncode})")
            result = Result.parse(out)
            result.extra["client_cpu_s"] = client_cpu
            self.record(name, result)
        self.otlp_store_path()

    def otlp_store_path(self) -> None:
        """`otlp_store_bare`: the store's bound, the receiver's rows written in statements of the receiver's size (its
        journal's segments in this run; without a journal the median of its writes; else 16 requests: 16 exporters
        waiting)."""
        if not self.wanted("otlp_store_bare"):
            return
        s = self.sizes
        per_write = 16
        for key in ("otlp_http", "otlp_grpc"):
            measured = self.results.get(key)
            if measured is None:
                continue
            if measured.extra.get("journal_segments"):  # the journal's statements: one per segment
                per_write = max(1, round(s.otlp_requests / measured.extra["journal_segments"]))
                break
            if measured.extra.get("median_write_rows"):
                per_write = max(1, round(measured.extra["median_write_rows"] / s.otlp_records_per_request))
                break
        self.record("otlp_store_bare", run_worker("otlp_store_bare", {
            "dsn": self.dsn("otlp-store-bare"), "requests": s.otlp_requests,
            "records_per_request": s.otlp_records_per_request, "per_write": per_write}))

    @staticmethod
    def _expect(proc: subprocess.Popen[str], word: str) -> None:
        assert proc.stdout is not None
        for _ in range(1000):
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the worker exited before saying {word}")
            if line.strip() == word:
                return
        raise RuntimeError(f"the worker never said {word}")

    # -- detection jobs -----------------------------------------------------------------------------------
    def jobs_path(self) -> None:
        if not self.wanted("jobs"):
            return
        s = self.sizes
        proc = subprocess.run([sys.executable, "-m", "bench.jobs_bench", "--instances", str(s.jobs_instances),
                               "--seconds", str(s.jobs_seconds), "--store", self.dsn("jobs")],
                              cwd=ROOT, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"jobs bench failed:\n{proc.stderr[-3000:]}")
        self.jobs = json.loads(proc.stdout)
        per_run = sum(j["one_window_s"] for j in self.jobs["jobs"].values())
        self.say(f"jobs: {per_run:.2f} s per run over {sum(self.jobs['rows'].values()):,} rows")

    # -- profile scraper ----------------------------------------------------------------------------------
    def scrape_path(self) -> None:
        if not self.wanted("scrape"):
            return
        s = self.sizes
        proc = subprocess.run([sys.executable, "-m", "bench.scrape_bench", "--targets", str(s.scrape_targets),
                               "--interval", str(s.scrape_interval), "--seconds", str(s.scrape_seconds)],
                              cwd=ROOT, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"scrape bench failed:\n{proc.stderr[-3000:]}")
        self.scrape = json.loads(proc.stdout.strip().splitlines()[-1])
        self.say(f"scrape: {self.scrape['target_rounds_per_min']:,.0f} target rounds/min")

    def scrape_text(self) -> list[str]:
        r = getattr(self, "scrape", None)
        if not r:
            return []
        return ["", f"Profile scraper, one worker, {r['targets']:,} targets every {r['interval_s']:g} s "
                f"(offered {r['offered_rounds_per_min']:,.0f} target rounds/min; a round is goroutine debug=2 + "
                f"goroutineleak + allocs): **{r['target_rounds_per_min']:,.0f} target rounds/min** stored "
                f"(statuses {r['scrapes']}), CPU {r['cpu_s']:.1f} s in {r['wall_s']:.1f} s, peak RSS "
                f"{r['peak_rss_mb']} MB. Per goroutine snapshot of {r['goroutines_per_snapshot']:,} goroutines: "
                f"**{r['sample_bytes_per_1k_goroutines']:,} bytes per 1,000 goroutines** in goroutine_samples "
                f"(compressed), {r['raw_bytes_per_1k_goroutines']:,} bytes per 1,000 goroutines of raw text in "
                f"profile_raw (3-day retention); profile_stacks holds {r['stack_table_bytes']:,} bytes in all."]

    # -- ingest latency while heavy queries run ----------------------------------------------------------
    def ingest_under_query_path(self) -> None:
        if not self.wanted("ingest_under_query,otlp_vs_before"):
            return
        s = self.sizes
        proc = subprocess.run([sys.executable, "-m", "bench.ingest_under_query", "--requests", str(s.iuq_requests),
                               "--records", str(s.otlp_records_per_request), "--readers", str(s.iuq_readers),
                               "--max-execution-time", str(s.iuq_max_execution_time)],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"ingest-under-query bench failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        self.iuq = json.loads(proc.stdout.strip().splitlines()[-1])
        self.say(f"ingest under queries: p99 {self.iuq['alone']['p99_ms']} -> {self.iuq['under_queries']['p99_ms']} ms")

    def ingest_under_query_text(self) -> list[str]:
        r = getattr(self, "iuq", None)
        if not r:
            return []
        alone, loaded = r["alone"], r["under_queries"]
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r["queries"].items())) or "none"
        return ["", f"OTLP/HTTP export latency of `fleetwatch run`, {self.sizes.otlp_records_per_request:,}-record "
                f"log requests from 4 connections, {alone['requests']} requests per phase: alone p50 "
                f"**{alone['p50_ms']} ms**, p99 **{alone['p99_ms']} ms** (max {alone['max_ms']} ms); while "
                f"{r['readers']} readers loop over `groupArray` over `numbers()` (to the memory limit) and "
                f"`count()` scans (to `max_execution_time` = {r['max_execution_time_s']:g} s) on the query endpoint: "
                f"p50 **{loaded['p50_ms']} ms**, p99 **{loaded['p99_ms']} ms** (max {loaded['max_ms']} ms); queries "
                f"ended: {ended}; {r['records_stored']:,} of {r['records_sent']:,} records stored "
                f"(`python -m bench.ingest_under_query`)."]

    # -- OTLP rows against the commit before the serving layer ------------------------------------------
    def otlp_vs_before_path(self) -> None:
        if not self.wanted("otlp_vs_before"):
            return
        proc = subprocess.run([sys.executable, "-m", "bench.otlp_before_after", "--pairs", str(self.sizes.ba_pairs)],
                              cwd=ROOT, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"before/after bench failed:\n{proc.stderr[-3000:]}")
        self.ba = json.loads(proc.stdout.strip().splitlines()[-1])
        self.say("otlp before/after: done")

    def otlp_vs_before_text(self) -> list[str]:
        r = getattr(self, "ba", None)
        if not r:
            return []
        out = ["", f"OTLP rows against {r['old']} (before the serving layer), medians of {r['pairs']} interleaved "
               "pairs on this machine (`python -m bench.otlp_before_after`):", "",
               "| row | records/s before | records/s now | CPU s per M before | CPU s per M now |",
               "|---|---:|---:|---:|---:|"]
        for transport, label in (("http", "OTLP/HTTP protobuf"), ("grpc", "OTLP/gRPC")):
            b, n = r["median"]["before"][transport], r["median"]["now"][transport]
            out.append(f"| {label} | {b['records_per_s']:,.0f} | {n['records_per_s']:,.0f} | "
                       f"{b['cpu_s_per_m']:.1f} | {n['cpu_s_per_m']:.1f} |")
        return out

    # -- report -------------------------------------------------------------------------------------------
    def table(self) -> str:
        bare = self.results.get("bare")
        naive = self.results.get("naive")
        labels = {
            "file": "file ingest (`fleetwatch ingest gctrace`)",
            "file_store_bare": "bound: the file command's statements alone (its chunks, its jobs, no Python between)",
            "file_big": "file ingest, more input (RSS check)",
            "tail": "file source tailing growing CRI pod logs (`[files] paths`)",
            "kafka_lines": "Kafka, one line per message",
            "kafka_lines_big": f"Kafka, one line per message, a backlog of {5 * self.sizes.kafka_one_line_messages:,}",
            "kafka_batched": f"Kafka, {self.sizes.kafka_lines_per_message} lines per message",
            "kafka_consume_bare_lines": "bound: confluent-kafka alone, one line per message (no store)",
            "kafka_consume_bare_batched": f"bound: confluent-kafka alone, {self.sizes.kafka_lines_per_message} "
                                          "lines per message (no store)",
            "kafka_store_bare_lines": "bound: the store's statement alone, one-line batches (no broker)",
            "kafka_store_bare_batched": f"bound: the store's statement alone, {self.sizes.kafka_lines_per_message}"
                                        "-line values (no broker)",
            "kafka_lines_python": "reference: Kafka, one line per message, Python normalizer only",
            "kafka_batched_python": f"reference: Kafka, {self.sizes.kafka_lines_per_message} lines per message, "
                                    "Python normalizer only",
            "otlp_http": f"OTLP/HTTP protobuf, {self.sizes.otlp_records_per_request} records/request",
            "otlp_grpc": f"OTLP/gRPC, {self.sizes.otlp_records_per_request} records/request",
            "otlp_http_python": f"reference: OTLP/HTTP, {self.sizes.otlp_records_per_request} records/request, "
                                "Python normalizer only",
            "otlp_grpc_python": f"reference: OTLP/gRPC, {self.sizes.otlp_records_per_request} records/request, "
                                "Python normalizer only",
            "otlp_http_bare": "bound: OTLP/HTTP transport only (decoded, answered, nothing stored)",
            "otlp_grpc_bare": "bound: OTLP/gRPC transport only (decoded, answered, nothing stored)",
            "otlp_store_bare": "bound: the store only (the OTLP rows in the receiver's writes)",
            "otlp_http_big": f"OTLP/HTTP protobuf, sustained: {self.sizes.otlp_big_rounds} x the requests (RSS check)",
            "otlp_grpc_big": f"OTLP/gRPC, sustained: {self.sizes.otlp_big_rounds} x the requests (RSS check)",
            "file_python": "reference: file ingest, Python normalizer only",
            "engine_parse": "prototype: parse in ClickHouse (Null table + MV)",
            "bare": "reference: bare String-column insert",
            "naive": "reference: pydantic + row-wise insert",
        }
        out = ["| path | lines in | rows stored | wall s | lines/s | CPU s per M | peak RSS MB | x bare | x naive "
               "| broker CPU s per M |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for key, label in labels.items():
            r = self.results.get(key)
            if r is None:
                continue
            ok = "" if r.rows == r.units else " (MISMATCH)"
            broker_cpu = r.extra.get("broker_cpu_s")
            broker_shown = f"{broker_cpu / r.units * 1e6:.1f}" if broker_cpu is not None and r.units else ""
            rate = r.extra.get("steady_rate") or r.rate
            shown = f"{r.rate:,.0f}" + (f" (steady {rate:,.0f})" if "steady_rate" in r.extra else "")
            x_bare = f"{rate / bare.rate:.2f}" if bare and key not in ("bare", "naive") else ""
            x_naive = f"{rate / naive.rate:,.0f}" if naive and key != "naive" else ""
            out.append(f"| {label} | {r.units:,} | {r.rows:,}{ok} | {r.wall_s:.2f} | {shown} | "
                       f"{r.cpu_per_million:.1f} | {r.peak_rss_mb:.0f} | {x_bare} | {x_naive} | {broker_shown} |")
        out += self.otlp_detail_text()
        out += self.file_detail_text()
        out += self.kafka_join_text()
        if self.jobs:
            jobs = self.jobs["jobs"]
            per_run = sum(j["one_window_s"] for j in jobs.values())
            detail = ", ".join(f"{name} {j['one_window_s']:.2f} s" for name, j in jobs.items())
            ok = all(j["status"] == "ok" for j in jobs.values())
            rows = sum(self.jobs["rows"].values())
            out.append("")
            out.append(f"Detection jobs, one run (every job, one {self.jobs['window_seconds']} s window) over "
                       f"{self.jobs['instances']:,} instances x {self.jobs['seconds_of_data'] // 3600} h "
                       f"({rows:,} rows): **{per_run:.2f} s** ({detail}){'' if ok else ' - A JOB FAILED'}.")
        out += self.scrape_text()
        out += self.ingest_under_query_text()
        out += self.otlp_vs_before_text()
        return "\n".join(out)


    def kafka_join_text(self) -> list[str]:
        """The Kafka rows as a running worker sees them: the group join (start to the worker's first assignment)
        in its own column, and the rate from that assignment to caught up, beside the end-to-end figure."""
        keys = [k for k in ("kafka_lines", "kafka_lines_big", "kafka_batched", "kafka_lines_python",
                            "kafka_batched_python")
                if k in self.results and "join_s" in self.results[k].extra]
        if not keys:
            return []
        out = ["", "| Kafka row | group join s | lines/s from assignment | lines/s end to end | steady |",
               "|---|---:|---:|---:|---:|"]
        for key in keys:
            r = self.results[key]
            out.append(f"| {key} | {r.extra['join_s']:.2f} | {r.extra['assigned_rate']:,.0f} | {r.rate:,.0f} | "
                       f"{r.extra.get('steady_rate', 0):,.0f} |")
        return out

    def file_detail_text(self) -> list[str]:
        """The file rows' CPU by phase of the command (start-up before the first input, ingest, close) and, with
        BENCH_THREADS=1, by thread; the bound's statements."""
        out: list[str] = []
        for key in ("file", "file_store_bare", "file_big"):
            r = self.results.get(key)
            if r is None:
                continue
            million = r.units / 1e6
            phases = r.extra.get("phases")
            if phases:
                shown = ", ".join(f"{name} {p['cpu_s'] / million:.2f} ({p['cpu_s']:.2f} CPU s, "
                                  f"{p['wall_s']:.2f} s wall)" for name, p in phases.items())
                out.append(f"\n{key}, CPU s per M by phase of the command: {shown}")
            if "merge_settle_cpu_s" in r.extra:
                out.append(f"\n{key}, then the background merges of its parts until none ran for 1 s: "
                           f"{r.extra['merge_settle_cpu_s'] / million:.2f} CPU s per M more "
                           f"({r.extra['merge_settle_wall_s']:.1f} s wall)")
            if "statements" in r.extra:
                out.append(f"\n{key}: {r.extra['statements']} statements on {r.extra['jobs']} threads, "
                           f"{r.extra['input_mb']} MB of input prepared before the clock")
            threads = r.extra.get("threads_cpu_s_per_m")
            if threads:
                out.append(f"\n{key}, CPU s per M by thread: " + ", ".join(
                    f"{name} {cpu:.2f}" for name, cpu in sorted(threads.items(), key=lambda kv: -kv[1]) if cpu >= 0.01))
        return out

    def otlp_detail_text(self) -> list[str]:
        """The OTLP rows' clients' CPU (they share the two cores with the receiver) and the writes the store got."""
        keys = [k for k in ("otlp_http", "otlp_grpc", "otlp_http_python", "otlp_grpc_python", "otlp_http_bare",
                            "otlp_grpc_bare", "otlp_http_big", "otlp_grpc_big", "otlp_store_bare")
                if k in self.results]
        if not keys:
            return []
        out = ["", "| OTLP row | receiver CPU s per M | client CPU s per M | writes | median rows per write "
                   "| journal segments | all answered, s | all stored, s |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for key in keys:
            r = self.results[key]
            client = r.extra.get("client_cpu_s")
            shown = f"{client / r.units * 1e6:.1f}" if client is not None and r.units else ""
            per_write = r.extra.get("per_write", 0) * self.sizes.otlp_records_per_request
            rows = r.extra.get("median_write_rows") or per_write
            answered = r.extra.get("answered_wall_s")
            out.append(f"| {key} | {r.cpu_per_million:.1f} | {shown} | {r.extra.get('writes', '')} | {rows or ''} "
                       f"| {r.extra.get('journal_segments') or ''} | {f'{answered:.2f}' if answered else ''} "
                       f"| {r.wall_s:.2f} |")
        for key in keys:
            threads = self.results[key].extra.get("thread_cpu_s")
            if threads:
                units = self.results[key].units / 1e6
                shares = ", ".join(f"{name} {cpu / units:.1f}" for name, cpu in
                                   sorted(threads.items(), key=lambda kv: -kv[1]) if cpu / units >= 0.05)
                out.append(f"\n{key}, receiver CPU s per M by thread: {shares}")
        store = self.results.get("otlp_store_bare")
        if store is not None and "merge_settle_cpu_s" in store.extra:
            settle = store.extra["merge_settle_cpu_s"] / store.units * 1e6
            out.append(f"\notlp_store_bare, then the background merges of its parts until none ran for 1 s: "
                       f"{settle:.1f} CPU s per M more ({store.extra['merge_settle_wall_s']:.1f} s wall), "
                       f"{store.cpu_per_million + settle:.1f} in all")
        return out


def machine() -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python "
            f"{platform.python_version()}, load average {load[0]:.1f} / {load[1]:.1f} at the start")


def record(command: str, header: str, table: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    if RUNS_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{RUNS_HEADING}\n"
    text = text.rstrip("\n") + f"\n\n### {stamp}: `{command}`\n\n{header}\n\n{table}\n"
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="small inputs, under two minutes")
    mode.add_argument("--full", action="store_true", help="the sizes docs/benchmarks.md reports")
    parser.add_argument("--only", help="comma-separated subset: file,file_store_bare,file_python,file_big,tail,"
                                       "engine_parse,bare,"
                                       "naive,kafka_lines,kafka_lines_big,kafka_batched,kafka_lines_python,kafka_batched_python,kafka_consume_bare,"
                                       "kafka_store_bare,kafka_store_bare_lines,kafka_store_bare_batched,"
                                       "otlp_http,otlp_grpc,"
                                       "otlp_http_python,otlp_grpc_python,otlp_http_bare,otlp_grpc_bare,"
                                       "otlp_http_big,otlp_grpc_big,otlp_store_bare,jobs,scrape,"
                                       "ingest_under_query,otlp_vs_before")
    parser.add_argument("--no-record", action="store_true", help="print the table, leave docs/ alone")
    parser.add_argument("--kafka-client", choices=("kafka-python", "confluent"),
                        help="kafka.client of the Kafka rows (default: the settings' default)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else None
    command = "python -m bench.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    header = machine()
    with tempfile.TemporaryDirectory(prefix="fleetwatch-bench-") as tmp:
        bench = Bench(sizes, Path(tmp), only, kafka_client=args.kafka_client)
        bench.file_paths()
        bench.kafka_paths()
        bench.otlp_paths()
        bench.jobs_path()
        bench.scrape_path()
        bench.ingest_under_query_path()
        bench.otlp_vs_before_path()
    table = bench.table()
    print(f"\n{command}\n{header}\n\n{table}")
    if not args.no_record:
        record(command, header, table)
    mismatch = [k for k, r in bench.results.items() if r.rows != r.units]
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
