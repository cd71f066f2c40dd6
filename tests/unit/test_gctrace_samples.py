"""Every line of every captured sample (Go 1.19.8, 1.26.6, 1.27.3) ends up as a row, a log line or a
quarantined line with a reason; the captures' split lines are repaired, and only real damage is quarantined."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.normalize.gctrace import normalize_lines
from pipeline.normalize.rows import Rows

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "go-runtime"
FILES = sorted(p.name for p in SAMPLES.glob("go1.*.txt"))
# Lines split by application output in the captures (a runtime prefix + "app: ..." on one line).
SPLIT = re.compile(r"^(?:gc|pacer:|scav) .*\S?app: ")
RUNTIME_HEADS = ("pacer: ", "scav ", "scan: ", "GC forced")
REPAIRED = {
    "go1.19.8-interleave.txt": 2, "go1.27.3-interleave.txt": 2, "go1.19.8-storm-gogc1.txt": 1,
    "go1.27.3-storm-gogc1.txt": 2,
}
FORCED = {"go1.19.8-forced.txt": 31, "go1.27.3-forced.txt": 20, "go1.26.6-leak-short.txt": 2}


def _lines(name: str) -> list[str]:
    text = (SAMPLES / name).read_text(encoding="utf-8")
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def _normalize(lines: list[str]) -> tuple[Rows, object]:
    rows = Rows()
    observed = [1_764_000_000_000_000_000 + i * 1_000_000 for i in range(len(lines))]
    stats = normalize_lines(lines, observed_ns=observed, service="svc", instance="i", source="file",
                            received_at=datetime.now(UTC), rows=rows)
    return rows, stats


def test_the_expected_samples_are_present() -> None:
    assert len(FILES) == 13
    assert sum((SAMPLES / f).stat().st_size for f in FILES) < 3_000_000


@pytest.mark.parametrize("name", FILES)
def test_every_line_is_accounted_for(name: str) -> None:
    lines = _lines(name)
    rows, stats = _normalize(lines)
    assert stats.lines == len(lines)
    assert stats.lines == stats.events + stats.other_runtime + stats.logs + stats.quarantined + stats.blank
    # Counted independently of the parser: every runtime line starts with its head in these captures (the
    # suffix of a split line never does), and every application line contains "app:".
    assert stats.events == sum(1 for line in lines if line.startswith("gc "))
    assert stats.other_runtime == sum(1 for line in lines if line.startswith(RUNTIME_HEADS))
    assert stats.logs == sum(1 for line in lines if "app:" in line)
    assert stats.quarantined == 0, rows.tables.get("quarantine", {}).get("reason")
    assert stats.repaired == REPAIRED.get(name, 0) == sum(1 for line in lines if SPLIT.match(line))
    gc = rows.tables["gc_events"]
    assert gc["gc_num"] == list(range(1, len(gc["gc_num"]) + 1))
    assert sum(gc["forced"]) == FORCED.get(name, 0)
    assert sum(gc["leak_check"]) == (2 if "leak" in name else 0)
    assert all(body.startswith("app:") or re.match(r"\d\d:\d\d:\d\d\.\d{6} app: ", body)
               for body in rows.tables["otel_logs"]["Body"])
    expected_formats = {"go1.18", "go1.26"} if "leak" in name else {"go1.18"}
    assert set(gc["format"]) == expected_formats
    assert all(s is not None and g is not None for s, g in zip(gc["stacks_mb"], gc["globals_mb"], strict=True))


@pytest.mark.parametrize("name", sorted(REPAIRED))
def test_only_truly_damaged_fragments_are_quarantined(name: str) -> None:
    """Drop the continuation of each split line: exactly the orphaned prefixes are quarantined."""
    lines = _lines(name)
    damaged = [i for i, line in enumerate(lines) if SPLIT.match(line)]
    kept = [line for i, line in enumerate(lines) if i - 1 not in damaged]
    rows, stats = _normalize(kept)
    assert stats.quarantined == len(damaged)
    assert stats.repaired == 0
    assert rows.tables["quarantine"]["raw"] == [lines[i] for i in damaged]
    assert all("no following line completes it" in r for r in rows.tables["quarantine"]["reason"])

    # Drop the beginnings instead: exactly the orphaned continuations are quarantined.
    kept = [line for i, line in enumerate(lines) if i not in damaged]
    rows, stats = _normalize(kept)
    assert stats.quarantined == len(damaged)
    assert rows.tables["quarantine"]["raw"] == [lines[i + 1] for i in damaged]
    assert all("without its beginning" in r for r in rows.tables["quarantine"]["reason"])


def test_steady_capture_has_the_periodic_gc_notice() -> None:
    for name in ("go1.19.8-steady.txt", "go1.27.3-steady.txt"):
        rows, _ = _normalize(_lines(name))
        notices = rows.tables["runtime_notices"]
        assert notices["kind"] == ["gc_forced"] and notices["raw"] == ["GC forced"]


def test_gctrace2_scan_lines_on_go127() -> None:
    rows, stats = _normalize(_lines("go1.27.3-gctrace2.txt"))
    kinds = rows.tables["runtime_notices"]["kind"]
    assert len(kinds) == stats.other_runtime > 10 * stats.events and set(kinds) == {"scan"}
