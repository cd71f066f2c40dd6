"""Our Python per one-line Kafka record, without the broker or the engine: what the consumer's thread and a write
thread do with the records of a backlog before the engine's statement.

Why: in the end-to-end row this Python shares two cores with librdkafka, the broker and the statements, so its
cost is lost in the noise of a loaded machine. Here, in one process, on fetches as `consume()` returns them
(lists of 2,000 librdkafka `Message`s of one partition, built with confluent-kafka's own constructor), each round
buffers a 56,000-record batch (8 MiB of one-line values: what `batch_early_bytes` cuts) plus 20,000 records fetched
while it is written, cuts the batch and builds the engine's input (`clean_input`), then takes the batch off the
buffer; process CPU per record, minimum of `--rounds`:
`python -m bench.kafka_records`. The same file runs on the tree before the records were kept as fetched (it uses
only what both trees have), so the two can be compared in the same minutes.
"""

from __future__ import annotations

import argparse
import time
from itertools import islice
from typing import Any

from confluent_kafka import Message
from kafka import TopicPartition

from bench import data
from pipeline.config import KafkaSettings
from pipeline.normalize.kafka_messages import Kind
from pipeline.sink import Sink
from pipeline.sources.kafka import consumer
from pipeline.sources.kafka.confluent import ConfluentWorker
from pipeline.sources.kafka.gctrace_engine import clean_input
from pipeline.telemetry import Telemetry

BATCH = 56_000
MORE = 20_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    lines = [line.encode() for line in data.instance_lines(BATCH + MORE)]
    fetches = [[Message(topic="bench", partition=0, offset=o, timestamp=(1, 1_796_119_200_000 + o),
                        key=b"bench/inst-0001", value=lines[o]) for o in range(start, start + 2000)]
               for start in range(0, BATCH + MORE, 2000)]
    telemetry = Telemetry()
    worker = ConfluentWorker(KafkaSettings(), Sink(None, telemetry), None, telemetry)  # type: ignore[arg-type]
    tp = TopicPartition("bench", 0)
    best: tuple[float, ...] | None = None
    for _ in range(args.rounds):
        times = _round(worker, tp, fetches)
        best = times if best is None else tuple(map(min, best, times))
    assert best is not None
    per = [t / BATCH * 1e6 for t in best]
    print(f"µs per record, min of {args.rounds}: buffer {per[0]:.3f}, cut and engine input {per[1]:.3f}, "
          f"take {per[2]:.3f}; total {sum(per):.3f}")
    telemetry.shutdown()


def _round(worker: Any, tp: TopicPartition, fetches: list[list[Message]]) -> tuple[float, float, float]:
    # new_state / _batch / cut_bytes exist only since the records are kept as fetched: without them, the tree before.
    st = worker.new_state(tp, Kind.gctrace) if hasattr(worker, "new_state") else consumer.PartitionState(
        tp, Kind.gctrace)
    st.committed = 0
    worker.states = {tp: st}
    t0 = time.process_time()
    for fetch in fetches[:BATCH // 2000]:
        worker._buffer_messages(fetch)
    buffer_cpu = time.process_time() - t0
    cut_bytes = st.bytes
    for fetch in fetches[BATCH // 2000:]:  # fetched while the batch is written
        worker._buffer_messages(fetch)
    t1 = time.process_time()
    batch = list(islice(st.buffer, BATCH))
    encoded = clean_input(worker._batch(batch) if hasattr(worker, "_batch") else batch, 1 << 20)
    assert encoded is not None and encoded.one_line and encoded.lines == BATCH
    t2 = time.process_time()
    if hasattr(st, "cut_bytes"):
        st.take(BATCH, cut_bytes)
    else:
        st.take(BATCH)
    t3 = time.process_time()
    assert len(st.buffer) == MORE
    return buffer_cpu, t2 - t1, t3 - t2


if __name__ == "__main__":
    main()
