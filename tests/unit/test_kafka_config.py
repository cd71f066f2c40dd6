"""Kafka settings -> KafkaConsumer options: fixed delivery choices, security pass-through, topics."""

from __future__ import annotations

from pipeline.config import load_settings
from pipeline.normalize.kafka_messages import Kind
from pipeline.sources.kafka.consumer import consumer_config, topic_kinds


def test_delivery_choices_cannot_be_lost_and_security_passes_through(monkeypatch) -> None:
    monkeypatch.setenv("FLEETWATCH_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SASL_USERNAME", "fw")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("FLEETWATCH_KAFKA__SSL_CAFILE", "/etc/ca.pem")
    monkeypatch.setenv("FLEETWATCH_KAFKA__CLIENT_OPTIONS", '{"request_timeout_ms": 40000}')
    settings = load_settings(kafka_bootstrap="b1:9093, b2:9093")
    config = consumer_config(settings.kafka)
    assert config["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert config["enable_auto_commit"] is False
    assert config["allow_auto_create_topics"] is False
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("fw", "s3cret")
    assert config["ssl_cafile"] == "/etc/ca.pem" and config["ssl_check_hostname"] is True
    assert config["request_timeout_ms"] == 40000
    assert "s3cret" not in repr(settings.kafka)


def test_an_empty_topic_name_turns_the_topic_off() -> None:
    settings = load_settings()
    kafka = settings.kafka.model_copy(update={"topic_otlp_spans": ""})
    kinds = topic_kinds(kafka)
    assert kinds == {"gctrace": Kind.gctrace, "cancel-events": Kind.cancel_events, "otlp_logs": Kind.otlp_logs,
                     "otlp_metrics": Kind.otlp_metrics, "pprof": Kind.pprof}
