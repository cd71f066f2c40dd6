"""The load side of the benchmarks: Kafka producers and OTLP senders, run in the runner's process.

Inputs are built before the clock starts (pre-encoded protobuf requests, produced Kafka topics), so the
figures measure Fleetwatch, not the generator.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from bench import data

SERVICE = "bench"


# -- Kafka -----------------------------------------------------------------------------------------------
def produce_gctrace(bootstrap: str, topic: str, *, instances: int, lines_per_instance: int,
                    lines_per_message: int, partitions: int = 2) -> int:
    """Fill `topic` with every instance's lines, `lines_per_message` per message (one line = one message,
    as a line-oriented shipper sends; more = batched values). Keys `service/instance`. Returns messages."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20,
                             max_request_size=8 << 20, acks=1)
    sent = 0
    now_ms = int(time.time() * 1000)
    try:
        for i, lines in data.round_robin(instances, lines_per_instance, lines_per_message):
            key = f"{SERVICE}/inst-{i:04d}".encode()
            partition = i % partitions
            if lines_per_message == 1:
                producer.send(topic, lines[0].encode(), key=key, partition=partition, timestamp_ms=now_ms)
            else:
                producer.send(topic, "\n".join(lines).encode(), key=key, partition=partition, timestamp_ms=now_ms)
            sent += 1
        producer.flush(120)
    finally:
        producer.close(30)
    return sent


# -- OTLP ------------------------------------------------------------------------------------------------
def log_requests(instances: int, records_per_request: int, requests: int) -> Iterator[bytes]:
    """Serialized ExportLogsServiceRequests: one resource (instance) each, its gctrace lines as bodies."""
    per_instance = -(-requests // instances)
    base_ns = time.time_ns() - 3600 * 10**9
    for r in range(requests):
        i, k = r % instances, r // instances
        assert k < per_instance
        lines = data.instance_lines(records_per_request, k * records_per_request)
        first = base_ns + int(k * records_per_request * data.STEP_S * 1e9)
        step = int(data.STEP_S * 1e9)
        records = [LogRecord(time_unix_nano=first + j * step, body=AnyValue(string_value=line))
                   for j, line in enumerate(lines)]
        resource = Resource(attributes=[
            KeyValue(key="service.name", value=AnyValue(string_value=SERVICE)),
            KeyValue(key="service.instance.id", value=AnyValue(string_value=f"inst-{i:04d}")),
        ])
        request = ExportLogsServiceRequest(
            resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
        )
        yield request.SerializeToString()


# The gRPC method path of LogsService.Export, from the generated descriptor.
_LOGS_SERVICE = logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"]
EXPORT_LOGS_METHOD = f"/{_LOGS_SERVICE.full_name}/{_LOGS_SERVICE.methods_by_name['Export'].name}"


def _spread(bodies: list[bytes], senders: int) -> list[list[bytes]]:
    return [bodies[i::senders] for i in range(senders)]


def in_round(body: bytes, round_number: int) -> bytes:
    """`body` as sent in round `round_number` of a longer run: round 0 as made, each later round with its instances
    renamed (`inst-0042` -> `i001-0042`, the same length, so the protobuf stays valid), so every round's records are
    new rows with a dedup token of their own, while only one round of bodies is held in memory."""
    return body if round_number == 0 else body.replace(b"inst-", b"i%03d-" % round_number, 1)


def _rounds(mine: list[bytes], rounds: int) -> Iterator[bytes]:
    for round_number in range(rounds):
        for body in mine:
            yield in_round(body, round_number)


def send_http(port: int, bodies: list[bytes], senders: int = 16, rounds: int = 1) -> float:
    """POST every body to /v1/logs over `senders` keep-alive connections, `rounds` times (`in_round`); wall seconds
    until all got 200."""
    errors: list[str] = []

    def run(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for body in _rounds(mine, rounds):
                for _attempt in range(100):
                    conn.request("POST", "/v1/logs", body, {"Content-Type": "application/x-protobuf"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        break
                    if resp.status not in (429, 503):
                        errors.append(f"HTTP {resp.status}")
                        return
                    time.sleep(float(resp.getheader("Retry-After") or 0.2))
        finally:
            conn.close()

    return _timed_threads(run, _spread(bodies, senders), errors)


def send_grpc(port: int, bodies: list[bytes], senders: int = 16, rounds: int = 1) -> float:
    """Export every request over one channel from `senders` threads, `rounds` times (`in_round`); wall seconds until
    all succeeded. The requests go as the bytes already made (grpcio's multicallable with an identity serializer, on
    the LogsService's own method path), so the client threads, which share the two cores with the receiver, do not
    serialize each request again as the generated stub would: the HTTP client sends its bodies as they are too."""
    import grpc
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT_LOGS_METHOD, request_serializer=bytes,
                                 response_deserializer=ExportLogsServiceResponse.FromString)
    errors: list[str] = []

    def run(mine: list[bytes]) -> None:
        for request in _rounds(mine, rounds):
            for _attempt in range(100):
                try:
                    export(request, timeout=120)
                    break
                except grpc.RpcError as exc:
                    if exc.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                        errors.append(str(exc.code()))
                        return
                    time.sleep(0.2)

    try:
        return _timed_threads(run, _spread(bodies, senders), errors)
    finally:
        channel.close()


def _timed_threads(fn, parts: list, errors: list[str]) -> float:  # type: ignore[no-untyped-def]
    threads = [threading.Thread(target=fn, args=(part,)) for part in parts]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"the receiver refused requests: {errors[:3]}")
    return wall
