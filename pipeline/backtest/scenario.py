"""A scenario: the rows the normalizers would have produced for a stretch of time, and what should be found.

Rows are kept as columns per table (the shape `Store.insert_columns` takes). Labels name a subject per
detection — an instance (GC storms), an instance and signal (leak trends) or a call edge (cancel gaps) —
with the expected verdict and, for a sick subject, when the trouble starts (`onset`) and the earliest time a
detection is fair (`fair_from`: before it the evidence is not there yet, so an earlier alarm is a guess).

On disk a scenario is a directory: `scenario.toml` (name, description, time range, labels, and optional
gctrace captures to normalize) and one `<table>.jsonl` per table (ClickHouse JSONEachRow). Captures and
table files may be gzipped (`.gz`): recordings of real programs compress about tenfold, and the library
lives in the repository.
"""

from __future__ import annotations

import gzip
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Detection = Literal["gc_storms", "leak_trends", "cancel_gaps"]
DETECTIONS: tuple[Detection, ...] = ("gc_storms", "leak_trends", "cancel_gaps")
INPUT_TABLES = ("gc_events", "runtime_metrics", "otel_traces", "cancel_events")
# Which input tables each job reads (its windows are run where these have rows).
JOB_INPUTS: dict[str, tuple[str, ...]] = {
    "gc_storms": ("gc_events",),
    "leak_trends": ("gc_events", "runtime_metrics"),
    "cancel_gaps": ("otel_traces", "cancel_events"),
}

Columns = dict[str, list]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Label(BaseModel):
    """The expected verdict of one subject of one detection."""

    model_config = ConfigDict(extra="forbid")

    detection: Detection
    service: str                       # the instance's service, or the edge's child service
    instance: str = ""                 # gc_storms, leak_trends
    signal: str = ""                   # leak_trends: goroutines | heap_live
    parent_service: str = ""           # cancel_gaps edge
    parent_operation: str = ""
    child_operation: str = ""
    sick: bool
    kind: str = ""                     # gc_storms: allocation | limit_squeeze | leak_driven | misconfiguration
    onset: datetime | None = None
    fair_from: datetime | None = None

    @field_validator("onset", "fair_from")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    def subject(self) -> tuple[str, ...]:
        return subject_key(self.detection, self.service, self.instance, self.signal,
                           self.parent_service, self.parent_operation, self.child_operation)


def subject_key(detection: str, service: str, instance: str = "", signal: str = "", parent_service: str = "",
                parent_operation: str = "", child_operation: str = "") -> tuple[str, ...]:
    if detection == "cancel_gaps":
        return (detection, parent_service, parent_operation, service, child_operation)
    if detection == "leak_trends":
        return (detection, service, instance, signal)
    return (detection, service, instance)


class GctraceCapture(BaseModel):
    """A real program's gctrace output in the scenario directory, normalized on load."""

    model_config = ConfigDict(extra="forbid")

    file: str
    service: str
    instance: str
    start_time: datetime

    @field_validator("start_time")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return _utc(value)


class Scenario(BaseModel):
    """Labelled rows for [start, end). Detections are scored from `evaluate_from` (default: start)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    start: datetime
    end: datetime
    evaluate_from: datetime | None = None
    labels: list[Label] = []
    captures: list[GctraceCapture] = []
    tables: dict[str, Columns] = Field(default_factory=dict, exclude=True)
    source_dir: Path | None = Field(default=None, exclude=True)

    @field_validator("start", "end", "evaluate_from")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    @property
    def healthy(self) -> bool:
        """No label expects a finding."""
        return not any(label.sick for label in self.labels)

    @property
    def scored_from(self) -> datetime:
        return self.evaluate_from or self.start

    def services(self) -> set[str]:
        found: set[str] = set()
        for table, columns in self.tables.items():
            name = "ServiceName" if table == "otel_traces" else "service"
            found.update(columns.get(name, []))
        found.update(label.service for label in self.labels)
        found.update(label.parent_service for label in self.labels if label.parent_service)
        return found

    def add_rows(self, table: str, columns: Columns) -> None:
        """Append columns to a table (names must match what is already there)."""
        current = self.tables.setdefault(table, {name: [] for name in columns})
        if set(current) != set(columns):
            raise ValueError(f"{self.name}: {table} rows with columns {sorted(columns)} != {sorted(current)}")
        for name, values in columns.items():
            current[name].extend(values)


def load_scenario_dir(path: Path) -> Scenario:
    """`scenario.toml` plus its `<table>.jsonl` files (left as JSON text; the replay inserts them as is)."""
    with (path / "scenario.toml").open("rb") as fh:
        doc = tomllib.load(fh)
    scenario = Scenario.model_validate(doc)
    scenario.source_dir = path
    materialize_captures(scenario)
    return scenario


def materialize_captures(scenario: Scenario) -> None:
    """Normalize the scenario's gctrace captures into its tables (the normalizer the ingest path uses)."""
    if not scenario.captures or scenario.source_dir is None:
        return
    from pipeline.normalize.gctrace import GctraceStream
    from pipeline.normalize.rows import Rows

    for capture in scenario.captures:
        rows = Rows()
        stream = GctraceStream(service=capture.service, instance=capture.instance, source="file",
                               received_at=capture.start_time, start_ns=int(capture.start_time.timestamp() * 1e9))
        lines = read_file(scenario.source_dir / capture.file).decode("utf-8").splitlines(keepends=True)
        stream.feed(lines, rows)
        stream.finish(rows)
        for table in INPUT_TABLES:
            if table in rows.tables:
                scenario.add_rows(table, {name: _as_times(values) if name in _TIME_COLUMNS else values
                                          for name, values in rows.tables[table].items()})
    scenario.captures = []


_TIME_COLUMNS = {"ts", "process_start", "received_at", "cancel_at"}


def _as_times(values: list) -> list:
    """The normalizers' fast path writes times as integers since the epoch (us, or ms): as datetimes."""
    out = []
    for v in values:
        if isinstance(v, int):
            v = datetime.fromtimestamp(v / (1e6 if v > 1e14 else 1e3), tz=UTC)
        out.append(v)
    return out


def read_file(path: Path) -> bytes:
    """A scenario file's bytes, decompressed when its name ends in `.gz`."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def table_files(scenario: Scenario) -> dict[str, Path]:
    """The JSONEachRow files of an on-disk scenario, by table (`<table>.jsonl` or `<table>.jsonl.gz`)."""
    if scenario.source_dir is None:
        return {}
    found: dict[str, Path] = {}
    for table in INPUT_TABLES:
        for name in (f"{table}.jsonl", f"{table}.jsonl.gz"):
            if (scenario.source_dir / name).is_file():
                found[table] = scenario.source_dir / name
                break
    return found


def dump_toml(scenario: Scenario) -> str:
    """scenario.toml text (labels included); written by `backtest export` for the user to edit."""
    lines = [f"name = {_toml(scenario.name)}", f"description = {_toml(scenario.description)}",
             f"start = {_toml(scenario.start)}", f"end = {_toml(scenario.end)}"]
    if scenario.evaluate_from is not None:
        lines.append(f"evaluate_from = {_toml(scenario.evaluate_from)}")
    for label in scenario.labels:
        lines.append("")
        lines.append("[[labels]]")
        for key, value in label.model_dump(exclude_defaults=True).items():
            lines.append(f"{key} = {_toml(value)}")
        if "sick" not in label.model_dump(exclude_defaults=True):
            lines.append(f"sick = {_toml(label.sick)}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
