"""Where `fleetwatch run` keeps the OTLP journal (pipeline/runtime.journal_dir), and when it keeps none."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_settings
from pipeline.runtime import journal_dir


def test_the_journal_is_per_database_beside_the_embedded_store(tmp_path: Path) -> None:
    settings = load_settings(clickhouse_dsn=f"chdb://{tmp_path / 'store'}", database="fleet_a")
    assert journal_dir(settings) == tmp_path / "store" / "otlp-journal" / "fleet_a"


def test_a_server_dsn_keeps_it_under_data_unless_told(tmp_path: Path) -> None:
    settings = load_settings(clickhouse_dsn="http://ch.example:8123", database="fleet_b")
    assert journal_dir(settings) == Path("data") / "otlp-journal" / "fleet_b"
    settings.otlp.journal_dir = tmp_path / "j"
    assert journal_dir(settings) == tmp_path / "j"


def test_no_journal_without_receivers_engine_store_or_wish(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    kafka_only = load_settings(clickhouse_dsn=dsn, otlp_grpc="", otlp_http="")
    assert journal_dir(kafka_only) is None
    assert journal_dir(load_settings(clickhouse_dsn=dsn, otlp_grpc="")) is not None  # HTTP alone still journals
    assert journal_dir(load_settings(clickhouse_dsn="chdb://memory")) is None
    off = load_settings(clickhouse_dsn=dsn)
    off.otlp.journal = False
    assert journal_dir(off) is None
    python_path = load_settings(clickhouse_dsn=dsn)
    python_path.otlp.gctrace_engine = False
    assert journal_dir(python_path) is None
