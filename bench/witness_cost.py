"""What the Kafka witness (`ingest_batch`, pipeline/witness.py) costs a normal write.

Why: every row a Kafka write stores carries its insert's token, so the columnar inserts of the Python path send
one more LowCardinality column (the engine statements get it as a constant, which costs nothing to send). This
writes the same normalized rows (gc_events and otel_logs of `--lines` raw-text messages, a gc line and an
application line each) with and without the witness, alternately, into a fresh embedded store, and prints the
median CPU per million rows: of the process (every thread, the engine's included: background merges of one write
land on the next, so the order alternates) and of the calling thread (where clickhouse-connect serializes the
columns).

    python -m bench.witness_cost --lines 100000 --repeat 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime

from pipeline.config import load_settings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind, normalize_messages
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, migrate

GC_LINE = ("gc {n} @{t:.3f}s 2%: 0.018+1.3+0.015 ms clock, 0.14+0.24/1.1/2.8+0.12 ms cpu, 4->4->1 MB, 5 MB goal, "
           "0 MB stacks, 0 MB globals, 8 P")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="messages (each gives one row per table)")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    settings = load_settings()
    now = int(time.time() * 1000)
    messages = [KafkaMessage(topic="t", partition=0, offset=i, timestamp_ms=now + i, key=b"svc/p0",
                             value=f"{GC_LINE.format(n=i + 1, t=i * 0.5)}\napp line {i}".encode())
                for i in range(args.lines)]
    rows = Rows()
    normalize_messages(Kind.gctrace, messages, rows=rows, received_at=datetime.now(UTC))
    total = rows.total()
    with tempfile.TemporaryDirectory(prefix="fleetwatch-witness-") as path:
        store = Store(f"chdb://{path}", "fleetwatch_bench")
        migrate(store, settings.sql_dir, RenderContext("fleetwatch_bench", settings.retention_days))
        sink = Sink(store)
        process: dict[bool, list[float]] = {False: [], True: []}
        thread: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(args.repeat):
            for witness in ((False, True) if rep % 2 == 0 else (True, False)):  # merges of the one before land on
                p0, t0 = time.process_time(), time.thread_time()
                sink.write(rows, token=f"bench/{rep}/{int(witness)}", witness=witness)
                process[witness].append(time.process_time() - p0)
                thread[witness].append(time.thread_time() - t0)
        store.close()
    for witness in (False, True):
        print(f"witness={witness!s:5} rows={total} CPU s per M rows: process "
              f"{statistics.median(process[witness]) / total * 1e6:.2f}, calling thread "
              f"{statistics.median(thread[witness]) / total * 1e6:.2f}")


if __name__ == "__main__":
    main()
