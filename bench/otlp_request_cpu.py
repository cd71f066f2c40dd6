"""`python -m bench.otlp_request_cpu [--tree DIR ...] [--rounds N] [--requests N]`: the OTLP request workers' CPU per
log record, part by part, in one process, without the port, the writer or the store.

Why: the receivers' end-to-end rows (`python -m bench.run --only otlp_http,otlp_grpc`) move with the machine's load
by more than the request workers' share of them, so a change to the per-record mapping is measured here, on the
bench's own requests (`bench.clients.log_requests`: 1,000 gc lines per request, one resource), by
`time.process_time` (this process's CPU, one thread), best of several runs. Parts: the upb decode, the dedup token
(sha256 of the body), `normalize_request` with the plain-gc path on, and all three together (what a request worker
does per request besides the port's own work).

With `--tree`, each tree (a checkout; its `pipeline` package is imported) is measured in its own process, the trees
in turn `--rounds` times, so a neighbour's load falls on all of them alike; printed per tree: the least and the
median over the rounds of each part's best, CPU microseconds per record (= CPU s per million records).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


def measure(requests: int, repeats: int) -> dict[str, float]:
    """CPU microseconds per record of each part, best of `repeats`, in this process."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from bench import clients
    from pipeline.normalize.otlp import normalize_request
    from pipeline.normalize.rows import Rows
    from pipeline.sources.otlp_export import dedup_token

    bodies = list(clients.log_requests(100, 1000, requests))
    decoded = [ExportLogsServiceRequest.FromString(body) for body in bodies]
    records = sum(len(scope.log_records) for request in decoded for resource in request.resource_logs
                  for scope in resource.scope_logs)
    received = datetime.now(UTC)

    def decode() -> None:
        for body in bodies:
            ExportLogsServiceRequest.FromString(body)

    def token() -> None:
        for body in bodies:
            dedup_token("logs", body)

    def normalize() -> None:
        for request in decoded:
            normalize_request("logs", request, rows=Rows(), source="otlp_http", received_at=received, plain_gc=True)

    def worker() -> None:
        for body in bodies:
            request = ExportLogsServiceRequest.FromString(body)
            normalize_request("logs", request, rows=Rows(), source="otlp_http", received_at=received, plain_gc=True)
            dedup_token("logs", body)

    parts: dict[str, Callable[[], None]] = {"decode": decode, "dedup_token": token, "normalize_request": normalize,
                                             "request worker (all three)": worker}
    best = {name: float("inf") for name in parts}
    for _ in range(repeats):  # the parts in turn, so a burst of load does not fall on one part only
        for name, fn in parts.items():
            start = time.process_time()
            fn()
            best[name] = min(best[name], (time.process_time() - start) / records * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_request_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[], help="a checkout to measure (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one measurement, for --tree
    args = parser.parse_args(argv)
    if args.json or not args.tree:
        result = measure(args.requests, args.repeats)
        if args.json:
            print(json.dumps(result))
        else:
            for name, value in result.items():
                print(f"{name:28s} {value:6.3f} CPU us per record")
        return 0
    trees = [Path(tree).resolve() for tree in args.tree]
    runs: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    for r in range(args.rounds):
        for tree in trees if r % 2 == 0 else reversed(trees):
            # This file run as a script, the tree first on the path: its `pipeline` (and its bench.clients, whose
            # requests are the same) are the ones imported.
            env = {**os.environ, "PYTHONPATH": str(tree)}
            proc = subprocess.run([sys.executable, __file__, "--json", "--requests", str(args.requests),
                                   "--repeats", str(args.repeats)], env=env, cwd=tree, capture_output=True,
                                  text=True, check=True)
            runs[tree].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for tree, results in runs.items():
        print(f"{tree}:")
        for name in results[0]:
            values = [result[name] for result in results]
            print(f"  {name:28s} least {min(values):6.3f}  median {statistics.median(values):6.3f} CPU us per record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
