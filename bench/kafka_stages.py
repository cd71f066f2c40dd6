"""Where the CPU of a batched Kafka gctrace write goes, stage by stage, with no broker.

Why: the `kafka_batched` row of `bench.run` gives one figure for the whole source (client, plan, normalize,
engine statements, commits, background merges). To know which part to work on, this script builds the same
partition batches the source builds from the bench topic (1,000 lines per message, 100 instances, record
times of one produce run, `kafka.batch_max_bytes` per batch), writes them with `write_batch` exactly as the
worker does (plan claimed first, then rows under the batch token) into a fresh embedded store, and charges
the process's CPU (`getrusage`: every thread, the engine's included) to each store call and to the Python
work between them. Background merges land on whichever stage runs while they do; a final `OPTIMIZE`-free
wait is not added, so the total is a floor of what the source spends.

    python -m bench.kafka_stages --lines 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from bench import data
from bench.measure import cpu_seconds
from pipeline.config import load_settings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.sink import Sink
from pipeline.sources.kafka.delivery import BatchLedger, batch_token, write_batch
from pipeline.sources.kafka.gctrace_engine import engine_from_settings
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate

P = ParamSpec("P")
R = TypeVar("R")


class Ledger:
    """CPU seconds per stage; what is not inside a timed call is charged to the stage named 'python'."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._depth:
            yield
            return
        self._depth += 1
        c0 = cpu_seconds()
        try:
            yield
        finally:
            self.cpu[name] += cpu_seconds() - c0
            self.calls[name] += 1
            self._depth -= 1

    def wrap(self, name_of: Callable[..., str], fn: Callable[P, R]) -> Callable[P, R]:
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            with self.stage(name_of(*args, **kwargs)):
                return fn(*args, **kwargs)
        return timed


def _label(sql: object, *_: object, **__: object) -> str:
    """A statement's label: the first words after its leading comment lines."""
    text = str(sql)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("--"):
            return " ".join(line.split()[:4])[:60]
    return text[:60]


def batches(lines: int, instances: int, per_message: int, partitions: int, max_bytes: int
            ) -> list[list[KafkaMessage]]:
    """The bench topic's messages, cut into partition batches as the worker cuts them (by bytes)."""
    now_ms = int(time.time() * 1000)
    offsets = [0] * partitions
    by_partition: list[list[KafkaMessage]] = [[] for _ in range(partitions)]
    for i, group in data.round_robin(instances, lines // instances, per_message):
        p = i % partitions
        value = "\n".join(group).encode()
        by_partition[p].append(KafkaMessage(topic="bench", partition=p, offset=offsets[p], timestamp_ms=now_ms,
                                            key=f"bench/inst-{i:04d}".encode(), value=value))
        offsets[p] += 1
    out: list[list[KafkaMessage]] = []
    for messages in by_partition:
        batch: list[KafkaMessage] = []
        size = 0
        for m in messages:
            if batch and size + m.size > max_bytes:
                out.append(batch)
                batch, size = [], 0
            batch.append(m)
            size += m.size
        if batch:
            out.append(batch)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--per-message", type=int, default=1_000)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--python", action="store_true", help="the Python normalizer only (engine off)")
    parser.add_argument("--stage-path", action="store_true",
                        help="every batch through the stage path (observed_batch.sql not tried)")
    parser.add_argument("--no-merges", action="store_true",
                        help="stop background merges of gc_events first, to see what they cost")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fw-kafka-stages-") as tmp:
        settings = load_settings(clickhouse_dsn=f"chdb://{tmp}/store", jobs_enabled=False)
        store = Store.from_settings(settings)
        migrate(store, settings.sql_dir, context_from_settings(settings))
        if args.no_merges:
            store.command(f"SYSTEM STOP MERGES {store.database}.gc_events")
        work = batches(args.lines, args.instances, args.per_message, 2, settings.kafka.batch_max_bytes)
        ledger = Ledger()
        store.query = ledger.wrap(lambda sql, *a, **k: "query: " + _label(sql), store.query)  # type: ignore[method-assign]
        store.command = ledger.wrap(lambda sql, *a, **k: "command: " + _label(sql), store.command)  # type: ignore[method-assign]
        store.insert_columns = ledger.wrap(lambda table, *a, **k: "insert_columns: " + table.split(".")[-1]  # type: ignore[method-assign]
                                           .split("_python")[0].split("kafka_gctrace_")[0] or "stage",
                                           store.insert_columns)
        store.insert_select_input = ledger.wrap(  # type: ignore[method-assign]
            lambda sql, *a, **k: "insert_select_input: " + _label(sql), store.insert_select_input)
        plans = BatchLedger(store, "g", settings.sql_dir, context_from_settings(settings))
        engine = None if args.python else engine_from_settings(settings, store)
        if engine is not None and args.stage_path:
            engine.one_statement = False
        sink = Sink(store)
        c0, t0 = cpu_seconds(), time.perf_counter()
        for batch in work:
            first = batch[0]
            end = batch[-1].offset + 1
            with ledger.stage("plan (kafka_batches)"):
                plan = plans.claim(first.topic, first.partition, first.offset, end, len(batch),
                                   gctrace_engine=engine is not None)
            token = batch_token("g", first.topic, first.partition, first.offset, end)
            write_batch(sink, Kind.gctrace, batch, token, received_at=plan.planned_at, otlp_encoding="",
                        max_message_bytes=settings.kafka.max_message_bytes, gctrace_engine=engine)
        cpu, wall = cpu_seconds() - c0, time.perf_counter() - t0
        if engine is not None:
            print(f"engine: {engine.clean_batches} batches by one statement, {engine.refused_batches} refused")
            engine.close()
        rows = int(store.scalar(f"SELECT count() FROM {store.database}.gc_events"))
        timed = sum(ledger.cpu.values())
        per_m = 1e6 / args.lines
        print(f"{len(work)} batches, {args.lines:,} lines, {rows:,} gc rows; {wall:.2f} s wall, "
              f"{cpu:.2f} CPU s = {cpu * per_m:.2f} CPU s per M lines")
        print("| stage | calls | CPU s per M lines | share |")
        print("|---|---:|---:|---:|")
        stages = sorted(ledger.cpu.items(), key=lambda kv: -kv[1])
        stages.append(("Python between store calls (split, columns, runs)", cpu - timed))
        for name, spent in stages:
            print(f"| {name} | {ledger.calls.get(name, '')} | {spent * per_m:.2f} | {spent / cpu:.0%} |")
        store.close()


if __name__ == "__main__":
    main()
