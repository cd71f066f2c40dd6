"""Server mode with the ClickHouse server down (a DSN to a closed port), and secrets kept out of every log.

`fleetwatch run` must start anyway, stay up, answer OTLP with 503 / UNAVAILABLE (never 200), report
`/healthz` alive and `/readyz` not ready, keep the Kafka group's offsets where they are (nothing is committed
that is not stored) and exit cleanly on SIGTERM. The same consumer group then drains the topic into a store
that works: every message lands once. Run at DEBUG with a bearer token, a DSN password, a query password and
a SASL password set, and none of them appears in anything the process printed.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import pytest
from kafka import KafkaConsumer, TopicPartition
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc

from tests.integration.test_faults_otlp import logs_request
from tests.net import free_port
from tests.plugins.kafka_pipeline import FLEETWATCH, create_topics, fleetwatch_env, gctrace_line, send, store_query
from tests.plugins.reliability import http_get

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "tok-9f3b1c7e"
DSN_PASSWORD = "dsnpw-51ae0c"
QUERY_PASSWORD = "qpw-7d20aa"
SASL_PASSWORD = "saslpw-c0ffee"


def post_logs(url: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-protobuf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = logs_request("down", ["while the store is down"]).SerializeToString()
    req = urllib.request.Request(f"{url}/v1/logs", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> list[int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return [consumer.committed(TopicPartition(topic, p)) for p in range(partitions)]
    finally:
        consumer.close(autocommit=False)


def test_server_store_down(restartable, tmp_path, kafka_bootstrap, kafka_names, producer) -> None:
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 2})
    for n in range(1, 61):
        send(producer, topic, gctrace_line(n), key=f"svc/p{n % 2}".encode(), partition=n % 2)
    producer.flush()

    password_file = tmp_path / "dsn-password"
    password_file.write_text(DSN_PASSWORD + "\n")
    env = fleetwatch_env(tmp_path / "unused", kafka_names, kafka_bootstrap)
    env.update({
        "FLEETWATCH_CLICKHOUSE_DSN": f"http://fleet@127.0.0.1:{free_port()}/",  # nothing listens there
        "FLEETWATCH_CLICKHOUSE_PASSWORD_FILE": str(password_file),
        "FLEETWATCH_OTLP__TOKEN": TOKEN,
        "FLEETWATCH_QUERY__PASSWORD": QUERY_PASSWORD,
        "FLEETWATCH_KAFKA__SASL_PASSWORD": SASL_PASSWORD,
        "FLEETWATCH_JOBS_ENABLED": "true",
        "FLEETWATCH_DETECT__INTERVAL_SECONDS": "0.5",
        "FLEETWATCH_LOG_LEVEL": "DEBUG",
    })
    for key in ("FLEETWATCH_QUERY_HTTP", "FLEETWATCH_OTLP_GRPC", "FLEETWATCH_OTLP_HTTP"):
        env.pop(key)
    fw = restartable(env=env, extra_args=["--log-level", "DEBUG"])
    fw.args = lambda: [FLEETWATCH, "run", "--otlp-grpc", fw.grpc_endpoint, "--otlp-http",  # jobs on
                       f"127.0.0.1:{fw.http_port}", "--query-http", "", "--log-level", "DEBUG"]
    fw.start()
    try:
        status, headers, _ = post_logs(fw.http_url, TOKEN)
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert post_logs(fw.http_url, "wrong")[0] == 401
        assert post_logs(fw.http_url, None)[0] == 401
        with grpc.insecure_channel(fw.grpc_endpoint) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            with pytest.raises(grpc.RpcError) as down:
                stub.Export(logs_request("down", ["x"]), timeout=60, metadata=[("authorization", f"Bearer {TOKEN}")])
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.RpcError) as denied:
                stub.Export(logs_request("down", ["x"]), timeout=60, metadata=[("authorization", "Bearer nope")])
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED

        assert http_get(f"{fw.http_url}/healthz") == (200, b'{"status":"alive"}\n')
        status, body = http_get(f"{fw.http_url}/readyz")
        checks = json.loads(body)["checks"]
        assert status == 503 and checks["store"].startswith("unavailable") and checks["migrations"] != "ok"

        # The Kafka worker and the scheduler keep retrying; the process stays up (bounded observation).
        deadline = time.monotonic() + 30
        while fw.log().count("not ready yet") < 4 and time.monotonic() < deadline:
            assert fw.alive(), fw.log()[-3000:]
            time.sleep(0.2)
        assert fw.log().count("not ready yet") >= 4, fw.log()[-3000:]
        assert "migrations retried" in fw.log()
        assert fw.alive()
        assert all(o in (None, 0) for o in committed_offsets(kafka_bootstrap, kafka_names.group, topic, 2))
    finally:
        code = fw.terminate()
    output = fw.log()
    assert code == 0, output[-3000:]
    for secret in (TOKEN, DSN_PASSWORD, QUERY_PASSWORD, SASL_PASSWORD):
        assert secret not in output, f"a secret appears in the log: ...{output[output.find(secret) - 200:][:400]}"
    assert "fleet:***@" in output or "127.0.0.1" in output  # the store is named, redacted

    # The same group, a store that works: everything the outage held back lands exactly once.
    store_path = tmp_path / "store"
    drain_env = fleetwatch_env(store_path, kafka_names, kafka_bootstrap)
    done = subprocess.run([FLEETWATCH, "run", "--until-caught-up"], env=drain_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert store_query(store_path, "SELECT count(), uniqExact(instance, gc_num) FROM fleetwatch.gc_events") == \
        [["60", "60"]]
