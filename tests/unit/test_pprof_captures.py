"""Real captures of tests/data/go/pprofleak (made by tests/data/pprof/capture.py with Go 1.27 and 1.19):
every format names the leak sites, their creators and the allocating function by file:line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.normalize.pprof import ProfileMeta, normalize_profile
from pipeline.normalize.rows import Rows

DATA = Path(__file__).resolve().parent.parent / "data" / "pprof"
SRC = Path(__file__).resolve().parent.parent / "data" / "go" / "pprofleak" / "main.go"
SOURCE = SRC.read_text().splitlines()
PARKED, ORPHANS = 12, 6  # capture.py runs the program with -parked 12 -orphans 6


def line_of(text: str, after: str = "") -> int:
    """1-based line of the first source line containing `text` (after the line containing `after`)."""
    start = next(i for i, s in enumerate(SOURCE) if after in s) if after else 0
    return next(i for i, s in enumerate(SOURCE) if i >= start and text in s) + 1


PARKED_SITE = ("main.leakParked", line_of("<-ch", "func leakParked"))
ORPHAN_SITE = ("main.leakOrphan", line_of("ch <- 1", "func leakOrphan"))
HOT_SITE = ("main.allocHot", line_of("make([]byte, 256<<10)"))


def normalize(name: str, hint: str | None = None) -> tuple[Rows, list[dict[str, object]]]:
    rows = Rows()
    meta = ProfileMeta(service="svc", instance="i", source="file", observed_ns=1_764_000_000 * 10**9,
                       received_at=datetime.now(UTC), type_hint=hint)
    result = normalize_profile((DATA / name).read_bytes(), meta, rows)
    assert result.ok, result.error
    table = "heap_samples" if "heap_samples" in rows.tables else "goroutine_samples"
    cols = rows.tables[table]
    return rows, [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def at(samples: list[dict[str, object]], site: tuple[str, int]) -> list[dict[str, object]]:
    found = [s for s in samples if (s["site_function"], s["site_line"]) == site]
    assert found, f"no sample at {site}"
    assert all(str(s["site_file"]).endswith("pprofleak/main.go") for s in found)
    return found


@pytest.mark.parametrize("name", [
    "go1.27-goroutine.pb.gz", "go1.27-goroutine-debug1.txt", "go1.27-goroutine-debug2.txt",
    "go1.19-goroutine-debug2.txt", "go1.27-sigquit.txt", "go1.19-sigquit.txt",
])
def test_goroutine_formats_name_both_sites(name: str) -> None:
    rows, samples = normalize(name)
    assert sum(int(s["goroutines"]) for s in at(samples, PARKED_SITE)) == PARKED  # type: ignore[call-overload]
    assert sum(int(s["goroutines"]) for s in at(samples, ORPHAN_SITE)) == ORPHANS  # type: ignore[call-overload]
    fmt = rows.tables["profile_snapshots"]["format"][0]
    if fmt in ("debug2", "traceback"):
        parked = at(samples, PARKED_SITE)[0]
        assert parked["wait_reason"] == "chan receive"
        assert (parked["created_by_function"], parked["created_by_line"]) == (
            "main.startParked", line_of("go leakParked(ch)"))
        assert at(samples, ORPHAN_SITE)[0]["wait_reason"] == "chan send"
    else:
        assert all(s["wait_reason"] == "" and s["created_by_function"] == "" for s in samples)


def test_stack_ids_agree_across_formats() -> None:
    ids = []
    for name in ("go1.27-goroutine.pb.gz", "go1.27-goroutine-debug1.txt", "go1.27-goroutine-debug2.txt"):
        _, samples = normalize(name)
        ids.append({at(samples, site)[0]["stack_id"] for site in (PARKED_SITE, ORPHAN_SITE)})
    assert ids[0] == ids[1] == ids[2]


def test_goroutineleak_proto_reports_only_the_orphans() -> None:
    rows, samples = normalize("go1.27-goroutineleak.pb.gz")
    assert {(s["site_function"], s["site_line"]) for s in samples} == {ORPHAN_SITE}
    assert all(s["leaked"] == 1 and s["profile_type"] == "goroutineleak" for s in samples)
    assert rows.tables["profile_snapshots"]["total_goroutines"] == [ORPHANS]


def test_goroutineleak_debug2_marks_the_orphans_leaked() -> None:
    _, samples = normalize("go1.27-goroutineleak-debug2.txt", "goroutineleak")
    assert all(s["leaked"] == 1 for s in at(samples, ORPHAN_SITE))
    assert all(s["leaked"] == 0 for s in at(samples, PARKED_SITE))


@pytest.mark.parametrize(("name", "kind"), [
    ("go1.27-allocs.pb.gz", "allocs"), ("go1.27-heap.pb.gz", "heap"), ("go1.19-allocs.pb.gz", "allocs"),
])
def test_heap_profiles_name_the_allocator(name: str, kind: str) -> None:
    rows, samples = normalize(name)
    snap = rows.tables["profile_snapshots"]
    assert snap["profile_type"] == [kind] and snap["sample_period"] == [512 * 1024]
    hot = at(samples, HOT_SITE)
    assert all(s["profile_type"] == kind for s in samples)
    top = max(samples, key=lambda s: int(s["alloc_space"]))  # type: ignore[call-overload]
    assert (top["site_function"], top["site_line"]) == HOT_SITE
    assert sum(int(s["alloc_objects"]) for s in hot) > 0  # type: ignore[call-overload]
