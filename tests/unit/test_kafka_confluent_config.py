"""Kafka settings -> librdkafka properties (pipeline/sources/kafka/confluent.py): the delivery choices cannot be lost,
the security settings are mapped, `client_options` pass through, and librdkafka itself accepts the result."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer
from pydantic import SecretStr

from pipeline.config import load_settings
from pipeline.sources.kafka import worker_class
from pipeline.sources.kafka.confluent import ConfluentWorker, confluent_config
from pipeline.sources.kafka.consumer import KafkaWorker


def test_delivery_choices_cannot_be_lost_and_security_is_mapped(monkeypatch) -> None:
    monkeypatch.setenv("FLEETWATCH_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SASL_USERNAME", "fw")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SSL_CAFILE", "/etc/ca.pem")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SSL_CERTFILE", "/etc/client.pem")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SSL_KEYFILE", "/etc/client.key")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SSL_CHECK_HOSTNAME", "false")
    monkeypatch.setenv("FLEETWATCH_KAFKA__CLIENT_OPTIONS", '{"socket.timeout.ms": 40000}')
    settings = load_settings(kafka_bootstrap="b1:9093, b2:9093")
    config = confluent_config(settings.kafka)
    assert config["bootstrap.servers"] == "b1:9093,b2:9093"
    assert config["enable.auto.commit"] is False and config["enable.auto.offset.store"] is False
    assert config["allow.auto.create.topics"] is False
    assert (config["security.protocol"], config["sasl.mechanism"]) == ("sasl_ssl", "SCRAM-SHA-512")
    assert (config["sasl.username"], config["sasl.password"]) == ("fw", "s3cret")
    assert (config["ssl.ca.location"], config["ssl.certificate.location"], config["ssl.key.location"]) == \
        ("/etc/ca.pem", "/etc/client.pem", "/etc/client.key")
    assert config["ssl.endpoint.identification.algorithm"] == "none"
    assert config["socket.timeout.ms"] == 40000
    # librdkafka's prefetch per partition is bounded by the batch size, not its 64 MiB default
    assert config["queued.max.messages.kbytes"] == settings.kafka.batch_max_bytes // 1024


def test_librdkafka_accepts_the_properties() -> None:
    settings = load_settings(kafka_bootstrap="127.0.0.1:1")
    kafka = settings.kafka.model_copy(update={"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                                              "sasl_username": "u", "sasl_password": SecretStr("p")})
    Consumer(confluent_config(kafka)).close()  # raises KafkaException on an unknown or invalid property


def test_the_setting_selects_the_worker() -> None:
    settings = load_settings()
    assert worker_class(settings.kafka) is ConfluentWorker  # the default (docs/architecture.md says why)
    assert worker_class(settings.kafka.model_copy(update={"client": "kafka-python"})) is KafkaWorker


def test_an_unknown_client_option_stops_the_worker_at_start(settings) -> None:
    """`client_options` name librdkafka properties with this client: a misspelt one fails the start loudly (the
    component then stops `fleetwatch run` with exit code 1) instead of being ignored."""
    from confluent_kafka import KafkaException

    from pipeline.sink import Sink
    from pipeline.telemetry import Telemetry

    kafka = settings.kafka.model_copy(update={"bootstrap": "127.0.0.1:1", "client_options": {"no.such.property": 1}})
    telemetry = Telemetry()
    try:
        worker = ConfluentWorker(kafka, Sink(None, telemetry), None, telemetry)  # type: ignore[arg-type]
        with pytest.raises(KafkaException, match=r"no\.such\.property"):
            worker.run()
    finally:
        telemetry.shutdown()
