"""Settings that reach SQL or carry secrets: identifiers validated, secrets from files, passwords redacted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.config import load_settings
from pipeline.store.client import redact_dsn
from pipeline.store.migrate import MigrationError, RenderContext


@pytest.mark.parametrize("name", ["fleetwatch", "t_0123abcd", "_x", "Fleet2"])
def test_plain_identifiers_are_accepted(name: str) -> None:
    assert load_settings(database=name, cluster=name).database == name


@pytest.mark.parametrize(
    "name",
    ["", "a b", "x; DROP DATABASE fleetwatch", "db`", "db'", "db.other", "1db", "db--", "d\u00e9j\u00e0", "a" * 64],
)
def test_database_and_cluster_must_be_identifiers(name: str) -> None:
    with pytest.raises(ValidationError, match=r"plain identifier|database|cluster"):
        load_settings(database=name)
    if name:
        with pytest.raises(ValidationError, match="plain identifier"):
            load_settings(cluster=name)
    with pytest.raises(MigrationError):
        RenderContext(database=name or "", ttl_days=1)


def test_secret_files_win_and_lose_their_final_newline(tmp_path, monkeypatch) -> None:
    files = {}
    secrets = {"token": "tok-from-file", "password": "pw from file", "sasl": "sasl-pw", "ch": "c:h@p/w"}
    for name, value in secrets.items():
        files[name] = tmp_path / name
        files[name].write_text(value + "\n")
    monkeypatch.setenv("FLEETWATCH_OTLP__TOKEN", "tok-from-env")
    monkeypatch.setenv("FLEETWATCH_OTLP__TOKEN_FILE", str(files["token"]))
    monkeypatch.setenv("FLEETWATCH_QUERY__PASSWORD_FILE", str(files["password"]))
    monkeypatch.setenv("FLEETWATCH_KAFKA__SASL_PASSWORD_FILE", str(files["sasl"]))
    monkeypatch.setenv("FLEETWATCH_CLICKHOUSE_PASSWORD_FILE", str(files["ch"]))
    settings = load_settings(clickhouse_dsn="https://reader@ch.example:8443/fleet")
    assert settings.otlp.token.get_secret_value() == "tok-from-file"
    assert settings.query.password.get_secret_value() == "pw from file"
    assert settings.kafka.sasl_password.get_secret_value() == "sasl-pw"
    # the password goes into the DSN percent-encoded, and is redacted whenever the DSN is shown
    assert settings.clickhouse_dsn == "https://reader:c%3Ah%40p%2Fw@ch.example:8443/fleet"
    assert "c%3Ah" not in redact_dsn(settings.clickhouse_dsn) and "***" in redact_dsn(settings.clickhouse_dsn)
    # secrets never show in the settings' own text
    text = repr(settings) + str(settings.model_dump())
    for secret in ("tok-from-file", "tok-from-env", "pw from file", "sasl-pw"):
        assert secret not in text


def test_a_missing_secret_file_is_a_clear_configuration_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot read secret file"):
        load_settings(otlp={"token_file": str(tmp_path / "absent")})


def test_the_password_env_variable_also_works_and_embedded_dsns_are_untouched(monkeypatch) -> None:
    monkeypatch.setenv("FLEETWATCH_CLICKHOUSE_PASSWORD", "envpw")
    assert load_settings(clickhouse_dsn="http://h:8123").clickhouse_dsn == "http://default:envpw@h:8123"
    assert load_settings(clickhouse_dsn="chdb:///tmp/x").clickhouse_dsn == "chdb:///tmp/x"
