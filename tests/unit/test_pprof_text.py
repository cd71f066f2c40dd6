"""Real goroutine dumps (debug=1, debug=2 with and without the Go 1.26+ leak marker) -> rows by name."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.normalize.pprof import PprofLimits, ProfileMeta, normalize_profile
from pipeline.normalize.pprof.text import function_name, parse_state
from pipeline.normalize.rows import Rows

DATA = Path(__file__).resolve().parent.parent / "data" / "pprof"
T0 = 1_764_000_000_000_000_000


def _meta(**kw: object) -> ProfileMeta:
    base: dict[str, object] = {"service": "svc", "instance": "i1", "source": "file", "observed_ns": T0,
                               "received_at": datetime.now(UTC), "location": "test"}
    base.update(kw)
    return ProfileMeta(**base)  # type: ignore[arg-type]


def _rows(name: str, **kw: object) -> Rows:
    rows = Rows()
    result = normalize_profile((DATA / name).read_bytes(), _meta(**kw), rows)
    assert result.ok, result.error
    return rows


def _samples(rows: Rows, table: str = "goroutine_samples") -> list[dict[str, object]]:
    cols = rows.tables[table]
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def test_debug2_leak_marker_wait_reason_created_by() -> None:
    name = "go1.26.6-leak-short-goroutineleak-debug2.txt"
    text = (DATA / name).read_text()
    rows = _rows(name, type_hint="goroutineleak")
    samples = _samples(rows)
    headers = re.findall(r"^goroutine \d+ \[", text, flags=re.M)
    assert sum(s["goroutines"] for s in samples) == len(headers)
    assert sum(s["goroutines"] for s in samples if s["leaked"]) == text.count("(leaked)")
    by_site = {(s["site_function"], s["wait_reason"]): s for s in samples if s["leaked"]}
    worker = by_site[("main.slowWorker", "chan send")]
    assert (worker["site_file"], worker["site_line"]) == ("/build/src/leak/main.go", 30)
    assert (worker["created_by_function"], worker["created_by_line"]) == ("main.handle", 36)
    assert ("main.receiveLeak.func1", "chan receive") in by_site
    assert ("main.selectLeak.func1", "select") in by_site
    # The blocking site skips sync's wait plumbing: the caller of WaitGroup.Wait is the site.
    assert ("main.wgLeak.func1", "sync.WaitGroup.Wait") in by_site
    snap = _samples(rows, "profile_snapshots")[0]
    assert (snap["format"], snap["profile_type"], snap["total_goroutines"]) == ("debug2", "goroutineleak", len(headers))


def test_debug1_counts_and_stack_ids_shared_with_debug2() -> None:
    d1 = _rows("go1.26.6-leak-short-goroutineleak-debug1.txt")
    text = (DATA / "go1.26.6-leak-short-goroutineleak-debug1.txt").read_text()
    total = int(re.search(r"total (\d+)", text).group(1))  # type: ignore[union-attr]
    samples = _samples(d1)
    assert sum(s["goroutines"] for s in samples) == total
    assert all(s["leaked"] == 1 and s["profile_type"] == "goroutineleak" for s in samples)
    counts = {s["site_function"]: s["goroutines"] for s in samples}
    assert counts["main.slowWorker"] == int(re.search(r"^(\d+) @", text, flags=re.M).group(1))  # type: ignore[union-attr]
    # The same goroutine stacks get the same stack_id in debug=1 and debug=2 dumps of one program.
    d2 = _rows("go1.26.6-leak-short-goroutineleak-debug2.txt")
    ids1 = {s["site_function"]: s["stack_id"] for s in samples}
    ids2 = {s["site_function"]: s["stack_id"] for s in _samples(d2)}
    for fn in ("main.slowWorker", "main.receiveLeak.func1", "main.selectLeak.func1"):
        assert ids1[fn] == ids2[fn], fn


def test_go119_debug1_is_read() -> None:
    rows = _rows("go1.19.8-leak-goroutine-debug1.txt")
    assert _samples(rows, "profile_snapshots")[0]["format"] == "debug1"


def test_stacks_are_deduplicated_and_leaf_first() -> None:
    rows = _rows("go1.26.6-leak-short-goroutineleak-debug2.txt")
    stacks = _samples(rows, "profile_stacks")
    assert len({s["stack_id"] for s in stacks}) == len(stacks)
    for sample in _samples(rows):
        stack = next(s for s in stacks if s["stack_id"] == sample["stack_id"])
        assert sample["site_function"] in stack["functions"]  # type: ignore[operator]
        assert len(stack["functions"]) == len(stack["files"]) == len(stack["lines"])  # type: ignore[arg-type]


def test_gzipped_text_and_identical_snapshot_ids() -> None:
    raw = (DATA / "go1.27.3-leak-goroutineleak-debug1.txt").read_bytes()
    a, b = Rows(), Rows()
    ra = normalize_profile(raw, _meta(), a)
    rb = normalize_profile(gzip.compress(raw), _meta(), b)
    assert ra.ok and rb.ok
    assert a.tables["goroutine_samples"]["stack_id"] == b.tables["goroutine_samples"]["stack_id"]
    assert normalize_profile(raw, _meta(), Rows()).snapshot_id == ra.snapshot_id
    assert normalize_profile(raw, _meta(instance="other"), Rows()).snapshot_id != ra.snapshot_id


@pytest.mark.parametrize(("header", "state", "minutes", "leaked"), [
    ("chan receive, 12 minutes, locked to thread", "chan receive", 12, False),
    ("chan send (leaked)", "chan send", 0, True),
    ('chan send (leaked) labels:{"route": "GET /x"}', "chan send", 0, True),
    ("select (no cases)", "select (no cases)", 0, False),
    ("running", "running", 0, False),
])
def test_state(header: str, state: str, minutes: int, leaked: bool) -> None:
    assert parse_state(header) == (state, minutes, leaked)


def test_function_name_drops_arguments_only() -> None:
    assert function_name("main.(*T).run(0xc000010000, {0x1, 0x2})") == "main.(*T).run"
    assert function_name("main.F[...](...)") == "main.F[...]"
    assert function_name("main.main()") == "main.main"


def test_limits_quarantine_with_reason() -> None:
    raw = (DATA / "go1.26.6-leak-short-goroutineleak-debug2.txt").read_bytes()
    rows = Rows()
    result = normalize_profile(raw, _meta(), rows, PprofLimits(max_samples=10))
    assert not result.ok and "max_samples" in result.error
    assert rows.tables["quarantine"]["reason"] == [result.error]
    assert "goroutine_samples" not in rows.tables
