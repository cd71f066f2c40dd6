"""Why the Kafka batch statement costs more per line than the file path's: the same lines, both statements.

Why: per line, sql/fastpath/observed_batch.sql (Kafka) was measured at about twice gctrace_chunk.sql (files). The
two parse a line with the same fragments (gc_recognise.sql, gc_fields.sql); they differ in what comes around
them: the Kafka input is RowBinary rows (record time, identity, value) split into lines by arrayJoin, its rows
belong to many instances (so the block gc_events sorts by (service, instance, ts) is not in order), and each row's
time is its record's. This runs, in one process on one embedded store, on the same bench lines (bench/data.py):

* `file`: gctrace_chunk.sql over one instance's lines (LineAsString), as `fleetwatch ingest gctrace` sends them;
* `kafka, 1 identity`: observed_batch.sql over the same lines of one identity, 1,000 lines per input row;
* `kafka, 1 identity, 1 line per row`: the same, one input row per line (one-line messages, ungrouped);
* `kafka, N identities`: observed_batch.sql over the lines of N instances interleaved (the bench topics), grouped
  1,000 lines per row;
* `kafka, N identities, 1 line per row`: the same, one input row per line;
* `kafka, N identities, one-line batch as one row`: observed_one_line.sql over the same interleaved lines as one
  row (times, identities, the lines joined), as the source encodes a batch of one line per message.

Each variant is timed `--rounds` times, rounds interleaved, on an emptied gc_events (a new token each time), CPU of
the process (every thread), minimum reported: `python -m bench.kafka_statement --lines 200000`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from collections.abc import Callable

from bench import data
from bench.measure import Stopwatch
from pipeline.config import load_settings
from pipeline.normalize.gctrace import GC_TABLE
from pipeline.normalize.kafka_messages import KafkaMessage
from pipeline.sink import Sink
from pipeline.sources.kafka.gctrace_engine import _ROW_HEAD, SOURCE, clean_input, engine_from_settings
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate
from pipeline.store.row_binary import uvarint


def _rows(groups: list[tuple[int, list[str]]]) -> bytes:
    """observed_batch.sql's RowBinary input: one row per (identity, lines)."""
    parts: list[bytes] = []
    for ident, lines in groups:
        blob = "\n".join(lines).encode()
        parts += (_ROW_HEAD.pack(1_796_119_200_000_000, ident), uvarint(len(blob)), blob)
    return b"".join(parts)


def _one_line_body(interleaved: list[tuple[int, list[str]]]) -> bytes:
    """observed_one_line.sql's input for the interleaved one-line messages, as the source builds it (clean_input)."""
    messages = [KafkaMessage("bench", 0, offset, 1_796_119_200_000, f"bench/inst-{i:04d}".encode(), lines[0].encode())
                for offset, (i, lines) in enumerate(interleaved)]
    encoded = clean_input(messages, 1 << 24)
    assert encoded is not None and encoded.one_line
    # clean_input numbers identities in order of first appearance, as the round robin names them: inst-0000 first.
    return encoded.data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    n, k = args.lines, args.instances
    one = data.instance_lines(n)
    interleaved = list(data.round_robin(k, n // k, 1))
    idents = [f"inst-{i:04d}" for i in range(k)]
    with tempfile.TemporaryDirectory(prefix="fw-kafka-statement-") as tmp:
        settings = load_settings(clickhouse_dsn=f"chdb://{tmp}/store", jobs_enabled=False)
        store = Store.from_settings(settings)
        ctx = context_from_settings(settings)
        migrate(store, settings.sql_dir, ctx)
        engine = engine_from_settings(settings, store)
        sink = Sink(store)
        chunk_sql = load_statement(settings.sql_dir, "fastpath/gctrace_chunk.sql", ctx)
        file_body = ("\n".join(one) + "\n").encode()

        def kafka(body: bytes, identities: list[str], sql: str | None = None) -> Callable[[], None]:
            def run() -> None:
                token = uuid.uuid4().hex
                sink.write_select(GC_TABLE, sql or engine.batch_sql, rows=n, token=token, data=body,
                                  parameters={"services": ["bench"] * len(identities), "instances": identities,
                                              "source": SOURCE, "received_ms": 1_796_119_200_000, "witness": token})
            return run

        def file() -> None:
            store.insert_select_lines(chunk_sql, file_body, parameters={
                "service": "bench", "instance": "inst-0000", "source": "file", "received_ms": 1_796_119_200_000,
                "start_us": 1_796_119_200_000_000, "incarnation": 1, "last_num": -1, "last_since_us": -1})

        variants: list[tuple[str, Callable[[], None]]] = [
            ("file (gctrace_chunk.sql), 1 instance", file),
            ("kafka, 1 identity, 1,000 lines per row", kafka(_rows([(0, one[i:i + 1000]) for i in range(0, n, 1000)]),
                                                           ["inst-0000"])),
            ("kafka, 1 identity, 1 line per row", kafka(_rows([(0, [line]) for line in one]), ["inst-0000"])),
            (f"kafka, {k} identities, 1,000 lines per row",
             kafka(_rows([(i, [ln for j, g in interleaved if j == i for ln in g][c:c + 1000])
                          for i in range(k) for c in range(0, n // k, 1000)]), idents)),
            (f"kafka, {k} identities, 1 line per row", kafka(_rows(interleaved), idents)),
            (f"kafka, {k} identities, one-line batch as one row (observed_one_line.sql)",
             kafka(_one_line_body(interleaved), idents, engine.one_line_sql)),
        ]
        print(f"{n:,} lines, min of {args.rounds} interleaved rounds, process CPU (all threads), "
              f"load average {os.getloadavg()[0]:.1f}")
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):  # rounds interleaved: the machine's load changes from second to second
            for name, run in variants:
                store.command(f"TRUNCATE TABLE {store.database}.gc_events")
                with Stopwatch() as sw:
                    run()
                if name not in best or sw.cpu < best[name][0]:
                    best[name] = (sw.cpu, sw.wall)
        print("| statement | CPU s per M lines | wall s per M lines |")
        print("|---|---:|---:|")
        for name, (cpu, wall) in best.items():
            print(f"| {name} | {cpu / n * 1e6:.2f} | {wall / n * 1e6:.2f} |", flush=True)
        store.close()


if __name__ == "__main__":
    main()
