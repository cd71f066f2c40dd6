"""The two bounds of a Kafka ingest row: what the client alone reads, and what the store alone writes.

Why: a Kafka row of `bench.run` (`kafka_lines`, `kafka_batched`) is the broker, the client, the source's Python and
the engine's statement at once, on a machine whose two cores the broker shares. To say which part a missed target
belongs to, each row gets its two references, measured on the same input:

* `kafka_consume_bare`: the confluent-kafka consumer (the source's client, with the source's librdkafka settings)
  reading the same topic from the same Tansu broker with nothing else done: per record only what the source
  reads (value, key, timestamp, headers). Partitions are assigned, not joined (no group join wait), and the clocks
  start once the broker has answered the metadata request, so this is the drain rate without the join.
* `kafka_store_bare`: the same statement the source runs for a batch of plain gc lines
  (sql/fastpath/observed_batch.sql), on the same values cut into the same partition batches (the source's
  `batch_max_messages` / `batch_max_bytes`), with no broker: the RowBinary input is built before the clock, so the
  figure is the engine's statement alone (parse, recognise, typed MergeTree write, under the batch's token).

Both report the process's CPU over all threads; the broker's CPU over the same interval comes from
/proc/<pid>/stat (`broker_cpu`), as for every Kafka row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from bench import data
from bench.measure import Result, Stopwatch, peak_rss_mb
from pipeline.config import KafkaSettings, load_settings
from pipeline.normalize.kafka_messages import KafkaMessage

SERVICE = "bench"
_TICK = os.sysconf("SC_CLK_TCK")


def broker_cpu(pid: int | None) -> float:
    """CPU seconds (user + system, every thread) the process `pid` has used so far; 0 without one."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime field 14, stime field 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / _TICK


class BrokerClock:
    """The broker's CPU over a measured interval (the `with` block)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.cpu = 0.0

    def __enter__(self) -> BrokerClock:
        self._c0 = broker_cpu(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = broker_cpu(self.pid) - self._c0


# -- the client's bound ---------------------------------------------------------------------------------
def consume_scenario(args: dict) -> Result:
    """Drain `args['topic']` with confluent-kafka and the source's client settings; nothing else."""
    from confluent_kafka import Consumer, TopicPartition

    from pipeline.sources.kafka.confluent import confluent_config

    settings = KafkaSettings(bootstrap=args["bootstrap"], group_id=args["group"], fetch_max_wait_ms=50,
                             session_timeout_ms=3000, heartbeat_interval_ms=1000, **args.get("kafka", {}))
    config = confluent_config(settings)
    consumer = Consumer(config)
    meta = consumer.list_topics(args["topic"], timeout=10)
    partitions = sorted(meta.topics[args["topic"]].partitions)
    consumer.assign([TopicPartition(args["topic"], p, 0) for p in partitions])
    expected, seen, size = args["messages"], 0, 0
    # The clocks start once the partitions are assigned and the broker connected (the metadata answer above):
    # every record is timed, as in the source's rows (the batched topic is only a few fetches long).
    with BrokerClock(args.get("broker_pid")) as broker, Stopwatch() as sw:
        while seen < expected:
            for m in consumer.consume(num_messages=settings.max_poll_records, timeout=0.1):
                if m.error() is None:
                    seen += 1
                    size += len(m.value())
                    m.key(), m.timestamp(), m.headers(), m.offset()  # what the source reads of every record
    consumer.close()
    return Result("kafka_consume_bare", args["lines"], args["lines"] if seen == expected else -1, sw.wall, sw.cpu,
                  peak_rss_mb(), extra={"messages": seen, "bytes": size, "broker_cpu_s": broker.cpu})


# -- the store's bound ----------------------------------------------------------------------------------
def topic_batches(instances: int, lines: int, per_message: int, partitions: int, settings: KafkaSettings
                  ) -> Iterator[list[KafkaMessage]]:
    """The bench topic's messages (bench.clients.produce_gctrace's values and keys), cut into partition batches
    by the source's limits (`batch_max_messages`, `batch_max_bytes`), as a worker with everything buffered does."""
    now_ms = int(time.time() * 1000)
    by_partition: list[list[KafkaMessage]] = [[] for _ in range(partitions)]
    for i, group in data.round_robin(instances, lines // instances, per_message):
        p = i % partitions
        by_partition[p].append(KafkaMessage("bench", p, len(by_partition[p]), now_ms,
                                            f"{SERVICE}/inst-{i:04d}".encode(), "\n".join(group).encode()))
    for messages in by_partition:
        batch: list[KafkaMessage] = []
        size = 0
        for m in messages:
            if batch and (len(batch) >= settings.batch_max_messages or size + m.size > settings.batch_max_bytes):
                yield batch
                batch, size = [], 0
            batch.append(m)
            size += m.size
        if batch:
            yield batch


def store_scenario(args: dict) -> Result:
    """The source's statement (observed_batch.sql, or observed_one_line.sql for one-line batches) over the bench
    topic's partition batches, its input built before the clock, written with the source's write concurrency:
    `kafka.write_threads` threads (writes.py's `PartitionWrites`), at most one batch per partition at a time and each
    partition's batches in order, as the worker hands them out."""
    from concurrent.futures import FIRST_COMPLETED, Future, wait

    from bench.parts import parts_written
    from pipeline.normalize.gctrace import GC_TABLE
    from pipeline.sink import Sink
    from pipeline.sources.kafka.delivery import batch_token
    from pipeline.sources.kafka.gctrace_engine import SOURCE, CleanInput, clean_input, engine_from_settings
    from pipeline.sources.kafka.writes import PartitionWrites
    from pipeline.store.client import Store
    from pipeline.store.migrate import context_from_settings, migrate

    kafka = KafkaSettings(**args.get("kafka", {}))
    settings = load_settings(clickhouse_dsn=args["dsn"], jobs_enabled=False, kafka=kafka)
    store = Store.from_settings(settings)
    migrate(store, settings.sql_dir, context_from_settings(settings))
    engine = engine_from_settings(settings, store)
    sink = Sink(store)
    received_ms = int(datetime.now(UTC).timestamp() * 1000)
    queues: dict[int, list[tuple[str, CleanInput]]] = {}
    prepare_cpu = 0.0
    for batch in topic_batches(100, args["lines"], args["per_message"], 2, kafka):
        with Stopwatch() as sw:
            encoded = clean_input(batch, kafka.max_message_bytes)
        prepare_cpu += sw.cpu
        assert encoded is not None, "the bench topic is plain gc lines only"
        queues.setdefault(batch[0].partition, []).append(
            (batch_token("g", "bench", batch[0].partition, batch[0].offset, batch[-1].offset + 1), encoded))
    batches = sum(map(len, queues.values()))

    def write(token: str, encoded: CleanInput) -> int:
        return sink.write_select(GC_TABLE, engine.statement(encoded), rows=encoded.lines, token=token,
                                 data=encoded.data,
                                 parameters={"services": [s for s, _ in encoded.identities],
                                             "instances": [i for _, i in encoded.identities],
                                             "source": SOURCE, "received_ms": received_ms, "witness": token})

    writes: PartitionWrites[int, int] = PartitionWrites(kafka.write_threads, name="bench-kafka-write")
    running: dict[int, Future[int]] = {}
    with Stopwatch() as sw:
        while any(queues.values()) or writes.running():
            for partition, queue in queues.items():
                if queue and not writes.busy(partition):
                    token, encoded = queue.pop(0)
                    running[partition] = writes.submit(
                        partition, None, 0, 0, encoded.lines,
                        lambda t=token, e=encoded: write(t, e)).future
            wait(running.values(), return_when=FIRST_COMPLETED)
            for partition, finished in writes.finished():
                finished.future.result()  # a failed statement fails the row
                del running[partition]
    writes.close()
    rows = int(store.scalar(f"SELECT count() FROM {store.database}.gc_events"))
    parts = parts_written(store)
    store.close()
    return Result("kafka_store_bare", args["lines"], rows, sw.wall, sw.cpu, peak_rss_mb(),
                  extra={"batches": batches, "input_cpu_s": prepare_cpu, "write_threads": kafka.write_threads,
                         "parts": parts})


SCENARIOS = {"kafka_consume_bare": consume_scenario, "kafka_store_bare": store_scenario}
