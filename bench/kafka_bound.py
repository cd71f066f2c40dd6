"""How fast a Kafka client alone drains the bench topics: the bound below any Kafka ingest path.

Why: the Kafka rows of `bench.run` include the client's own work per record (fetch, decompression, record
batch decoding, one Python object per record). Before normalizing or the store can be blamed, the client's
ceiling has to be known. This script fills the same topics as `bench.run` (one line per message, and 1,000
lines per message), then reads each one to its end with nothing else: no normalizing, no insert.

Clients measured, each in a fresh process so its CPU (getrusage: every thread, the C client's included) is
its own:

* `kafka-python` (the source's other client, `kafka.client = "kafka-python"`), with its consumer options;
* `kafka-python+messages`: the same, plus what the source does per record before normalizing (a
  `KafkaMessage` per record, as `KafkaWorker._buffer` builds it);
* `confluent-kafka` (librdkafka, a C client; the source's default client since `kafka.client` exists);
* `confluent-kafka+messages`: the same, plus what `ConfluentWorker._buffer_messages` does per record (a
  `KafkaMessage` from the record's accessors, gathered per partition stretch).

Partitions are assigned directly (no group join, which on Tansu waits about half the session timeout), and the
clocks (wall and CPU) start at the first record received, so the figure is the steady drain rate without
imports and connection set-up.

    python -m bench.kafka_bound --lines 300000 --batched-lines 2000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.measure import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("kafka-python", "kafka-python+messages", "confluent-kafka", "confluent-kafka+messages")


def _drain_kafka_python(bootstrap: str, topic: str, expected: int, build_messages: bool
                        ) -> tuple[int, float, float]:
    from kafka import KafkaConsumer, TopicPartition

    from pipeline.config import KafkaSettings
    from pipeline.normalize.kafka_messages import KafkaMessage

    defaults = KafkaSettings()
    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=defaults.fetch_max_wait_ms,
                             max_poll_records=defaults.max_poll_records)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen, size = 0, 0
    kept: list[KafkaMessage] = []
    t0 = cpu0 = 0.0
    while seen < expected:
        for batch in consumer.poll(timeout_ms=100).values():
            if not t0:
                t0, cpu0 = time.perf_counter(), cpu_seconds()
            seen += len(batch)
            if build_messages:
                kept = [KafkaMessage(topic=r.topic, partition=r.partition, offset=r.offset, timestamp_ms=r.timestamp,
                                     key=r.key, value=r.value, headers=tuple((k, v) for k, v in (r.headers or ())))
                        for r in batch]
                size += sum(m.size for m in kept)
            else:
                size += sum(len(r.value) for r in batch)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    consumer.close(autocommit=False)
    return size, wall, cpu


def _drain_confluent(bootstrap: str, topic: str, expected: int, build_messages: bool) -> tuple[int, float, float]:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    from pipeline.config import KafkaSettings
    from pipeline.normalize.kafka_messages import KafkaMessage
    from pipeline.sources.kafka.consumer import bytes_of

    defaults = KafkaSettings()

    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    partitions = sorted(meta.topics[topic].partitions)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bound-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen, size = 0, 0
    t0 = cpu0 = 0.0
    kept: list[KafkaMessage] = []
    while seen < expected:
        batch = consumer.consume(num_messages=defaults.max_poll_records, timeout=0.1)
        if batch and not t0:
            t0, cpu0 = time.perf_counter(), cpu_seconds()
        if build_messages:  # as ConfluentWorker._buffer_messages
            kept = []
            for msg in batch:
                if msg.error() is None:
                    headers = msg.headers()
                    kept.append(KafkaMessage(msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1], msg.key(),
                                             msg.value(), tuple(headers) if headers else ()))
            seen += len(kept)
            size += bytes_of(kept)
            continue
        for msg in batch:
            if msg.error() is None:
                seen += 1
                size += len(msg.value())
                msg.key(), msg.timestamp(), msg.headers()  # what the source reads of every record
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    consumer.close()
    return size, wall, cpu


def drain(client: str, bootstrap: str, topic: str, expected: int) -> dict:
    """Read `topic` to `expected` records with `client`; the figures of this process."""
    if client.startswith("confluent-kafka"):
        size, wall, cpu = _drain_confluent(bootstrap, topic, expected, client.endswith("+messages"))
    else:
        size, wall, cpu = _drain_kafka_python(bootstrap, topic, expected, client.endswith("+messages"))
    return {"client": client, "records": expected, "bytes": size, "wall_s": wall, "cpu_s": cpu}


def _run_child(client: str, bootstrap: str, topic: str, expected: int) -> dict | None:
    proc = subprocess.run([sys.executable, "-m", "bench.kafka_bound", "--drain", client, bootstrap, topic,
                           str(expected)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000, help="lines (= messages) of the one-line topic")
    parser.add_argument("--batched-lines", type=int, default=1_000_000, help="lines of the batched topic")
    parser.add_argument("--per-message", type=int, default=1_000, help="lines per message of the batched topic")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--drain", nargs=4, metavar=("CLIENT", "BOOTSTRAP", "TOPIC", "RECORDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drain:
        client, bootstrap, topic, expected = args.drain
        print(json.dumps(drain(client, bootstrap, topic, int(expected))))
        return 0

    sys.path.insert(0, str(ROOT))
    from bench import clients
    from tests.plugins.kafka_broker import Broker

    try:
        import confluent_kafka  # noqa: F401
        wanted = CLIENTS
    except ImportError:
        print("confluent-kafka is not installed: measuring kafka-python only", file=sys.stderr)
        wanted = CLIENTS[:2]  # pragma: no cover - confluent-kafka is a dependency
    broker = Broker().start()
    print("| topic | client | records | lines/s | CPU s per M lines | CPU s per M records |")
    print("|---|---|---:|---:|---:|---:|")
    try:
        for name, per_message, lines in (("one line per message", 1, args.lines),
                                         (f"{args.per_message} lines per message", args.per_message,
                                          args.batched_lines)):
            topic = f"bound-{uuid.uuid4().hex[:6]}"
            records = clients.produce_gctrace(broker.bootstrap, topic, instances=100,
                                              lines_per_instance=lines // 100, lines_per_message=per_message)
            for _ in range(args.rounds):
                for client in wanted:
                    got = _run_child(client, broker.bootstrap, topic, records)
                    if got is None:
                        print(f"| {name} | {client} | failed | | | |")
                        continue
                    print(f"| {name} | {client} | {records:,} | {lines / got['wall_s']:,.0f} | "
                          f"{got['cpu_s'] / lines * 1e6:.2f} | {got['cpu_s'] / records * 1e6:.2f} |", flush=True)
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
