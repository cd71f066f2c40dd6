"""Scenario directories on disk: gzipped captures and table files load exactly like plain ones, and the
recorded real-program scenarios match what the recorder says it ran (labels from the program, not from a
detector)."""

from __future__ import annotations

import gzip
import shutil
import tomllib
from pathlib import Path

import pytest

from pipeline.backtest.scenario import load_scenario_dir, read_file, table_files
from tests.scenarios.recordings import RECORDINGS

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"
STEADY = SCENARIOS / "real-steady-go1.27"


def _gzip_copy(src: Path, dst: Path) -> None:
    dst.write_bytes(gzip.compress(src.read_bytes(), mtime=0))


def test_gzipped_capture_and_table_files_load_like_plain_ones(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    packed = tmp_path / "packed"
    for d in (plain, packed):
        d.mkdir()
    capture = (STEADY / "../../go-runtime/go1.27.3-steady.txt").resolve()
    shutil.copy(capture, plain / "gctrace.txt")
    _gzip_copy(capture, packed / "gctrace.txt.gz")
    rows = b'{"service":"x","instance":"i0","ts":"2026-11-02 00:00:10.000","metric":"go.goroutine.count"}\n'
    (plain / "runtime_metrics.jsonl").write_bytes(rows)
    (packed / "runtime_metrics.jsonl.gz").write_bytes(gzip.compress(rows))
    toml = (STEADY / "scenario.toml").read_text(encoding="utf-8")
    source = tomllib.loads(toml)["captures"][0]["file"]
    (plain / "scenario.toml").write_text(toml.replace(source, "gctrace.txt"), encoding="utf-8")
    (packed / "scenario.toml").write_text(toml.replace(source, "gctrace.txt.gz"), encoding="utf-8")

    a, b = load_scenario_dir(plain), load_scenario_dir(packed)
    assert a.tables["gc_events"]["gc_num"] and a.tables == b.tables
    assert read_file(table_files(a)["runtime_metrics"]) == read_file(table_files(b)["runtime_metrics"]) == rows
    assert table_files(b)["runtime_metrics"].name == "runtime_metrics.jsonl.gz"


def test_recordings_balanced_and_labelled_from_the_program() -> None:
    sick = [r for r in RECORDINGS if any(lb.sick for lb in r.labels)]
    healthy = [r for r in RECORDINGS if not any(lb.sick for lb in r.labels)]
    assert len(healthy) >= len(sick) >= 7
    kinds = {lb.kind for r in RECORDINGS for lb in r.labels if lb.detection == "gc_storms" and lb.sick}
    assert kinds == {"allocation", "misconfiguration", "limit_squeeze", "leak_driven"}
    assert {lb.signal for r in sick for lb in r.labels if lb.detection == "leak_trends" and lb.sick} == {
        "goroutines", "heap_live"}
    assert {r.go for r in RECORDINGS} == {"1.27", "1.19"}
    for rec in RECORDINGS:
        for label in rec.labels:
            if label.sick:   # the trouble starts inside the run, and is judged once the evidence can be there
                assert label.onset_s is not None and label.fair_s is not None
                assert 0 <= label.onset_s <= label.fair_s < rec.seconds


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda r: r.name)
def test_recorded_scenario_matches_its_recording(rec) -> None:
    path = SCENARIOS / rec.name
    if not path.is_dir():
        pytest.fail(f"{rec.name} is not recorded: python -m tests.scenarios.record run/convert {rec.name}")
    sc = load_scenario_dir(path)
    assert sc.name == rec.name
    assert [(lb.detection, lb.signal, lb.sick, lb.kind) for lb in sc.labels] == [
        (lb.detection, lb.signal, lb.sick, lb.kind) for lb in rec.labels]
    assert (sc.end - sc.start).total_seconds() >= rec.seconds
    files = table_files(sc)
    if rec.program == "servicesim":
        assert sc.tables["gc_events"]["gc_num"], "no gctrace cycles"
        span = max(sc.tables["gc_events"]["ts"]) - min(sc.tables["gc_events"]["ts"])
        assert span.total_seconds() >= 0.95 * rec.seconds   # it ran for as long as its detection needs
        assert "runtime_metrics" in files
    else:
        assert {"otel_traces", "cancel_events"} <= set(files)
    assert sum(p.stat().st_size for p in path.iterdir()) < 1_000_000


def test_library_keyword_runs_generated_scenarios_with_directories() -> None:
    from pipeline.backtest.command import resolve_scenarios
    from pipeline.backtest.library import GENERATORS

    found = resolve_scenarios(["library", str(STEADY)])
    assert len(found) == len(GENERATORS) + 1 and found[-1].name == "real-steady-go1.27"
