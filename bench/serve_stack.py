"""`python -m bench.serve_stack [--seconds S]`: OTLP/HTTP throughput of the candidate server stacks (and of
the thread-per-connection stdlib server they replace).

The choice of the serving layer's stack (pipeline/serve/) was made on this measurement. Each stack serves
`POST /v1/logs` in a subprocess of its own: read the body, decode the protobuf request and normalize it into
rows on a worker thread (what the real route does before handing rows to the writer; the store is left out
so the figures compare the stacks, not the engine). 16 client threads on keep-alive connections send
pre-encoded 1,000-record ExportLogsServiceRequests for a fixed time. Printed: requests and records per
second, and the server's CPU seconds per 1,000 requests (user + system of the server process).
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from bench import clients

STACKS = ("starlette", "aiohttp", "stdlib")


def _work(body: bytes) -> int:
    from pipeline.normalize.otlp import decode_request, normalize_request
    from pipeline.normalize.rows import Rows

    request = decode_request("logs", body, "proto")
    rows = Rows()
    normalize_request("logs", request, rows=rows, source="bench", received_at=datetime.now(UTC))
    return rows.total()


def serve_starlette(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def logs(request: Request) -> Response:
        body = await request.body()
        await run_in_threadpool(_work, body)
        return Response(b"", media_type="application/x-protobuf")

    app = Starlette(routes=[Route("/v1/logs", logs, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", http="httptools", lifespan="off")


def serve_aiohttp(port: int) -> None:
    import asyncio

    from aiohttp import web

    async def logs(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.get_running_loop().run_in_executor(None, _work, body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/logs", logs)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_stdlib(port: int) -> None:
    """The thread-per-connection `http.server` the serving layer replaced, doing the same work."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            _work(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def _drive(port: int, bodies: list[bytes], seconds: float, senders: int) -> int:
    done = [0] * senders
    stop = time.monotonic() + seconds

    def sender(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        k = i
        while time.monotonic() < stop:
            try:
                conn.request("POST", "/v1/logs", body=bodies[k % len(bodies)],
                             headers={"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
            except OSError:  # the stdlib server's small accept backlog resets connections under load
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if response.status == 200:
                done[i] += 1
            k += senders
        conn.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def _wait_port(port: int, deadline: float) -> None:
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def measure(stack: str, bodies: list[bytes], seconds: float, senders: int) -> dict[str, float]:
    from tests.net import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.serve_stack", "--serve", stack, "--port", str(port)])
    try:
        _wait_port(port, time.monotonic() + 30)
        _drive(port, bodies[:32], 1.0, senders)  # warm-up: imports, first allocations
        cpu0 = _cpu(proc.pid)
        started = time.monotonic()
        requests = _drive(port, bodies, seconds, senders)
        wall = time.monotonic() - started
        cpu = _cpu(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(30)
    return {"requests_s": requests / wall, "records_s": requests * 1000 / wall,
            "cpu_s_per_1k_requests": cpu / max(requests, 1) * 1000}


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", choices=STACKS)
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
        {"starlette": serve_starlette, "aiohttp": serve_aiohttp, "stdlib": serve_stdlib}[args.serve](args.port)
        return
    bodies = list(clients.log_requests(100, 1000, 200))
    print(f"load average {os.getloadavg()[0]:.2f}; {args.senders} senders, {args.seconds:.0f} s per run")
    for round_ in range(args.rounds):
        for stack in STACKS:
            figures = measure(stack, bodies, args.seconds, args.senders)
            print(f"round {round_ + 1} {stack:10s} {figures['requests_s']:7.1f} req/s "
                  f"{figures['records_s']:9.0f} records/s  cpu {figures['cpu_s_per_1k_requests']:.2f} s/1k req",
                  flush=True)


if __name__ == "__main__":
    main()
