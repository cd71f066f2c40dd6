"""Go runtime metric names from every vocabulary -> one canonical name and unit per signal.

Services report the same runtime facts under three generations of names: today's OpenTelemetry
semantic conventions (`go.goroutine.count`), the Go contrib instrumentation's deprecated names
(`process.runtime.go.goroutines`, before 2022 `runtime.go.goroutines`) and Prometheus client_golang's
(`go_goroutines`). Detections must not care which one a service uses, so runtime_metrics stores the
canonical name (the semconv name where one exists, a `go.*` name in the same style otherwise) with the
value converted to the canonical unit (bytes `By`, seconds `s`, counts `1` or `{thing}`); the name the
producer used stays in `source_name`. docs/schema.md prints this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Canonical:
    name: str
    unit: str


# canonical name -> (unit, [(source name, scale applied when the producer declares no unit), ...])
_TABLE: dict[str, tuple[str, list[tuple[str, float]]]] = {
    "go.goroutine.count": ("{goroutine}", [
        ("go.goroutine.count", 1), ("process.runtime.go.goroutines", 1), ("runtime.go.goroutines", 1),
        ("go_goroutines", 1), ("go_sched_goroutines_goroutines", 1),
    ]),
    "go.processor.limit": ("{thread}", [("go.processor.limit", 1), ("go_sched_gomaxprocs_threads", 1)]),
    "go.config.gogc": ("%", [("go.config.gogc", 1), ("go_gc_gogc_percent", 1)]),
    "go.memory.limit": ("By", [("go.memory.limit", 1), ("go_gc_gomemlimit_bytes", 1)]),
    "go.memory.gc.goal": ("By", [
        ("go.memory.gc.goal", 1), ("go_memstats_next_gc_bytes", 1), ("go_gc_heap_goal_bytes", 1),
    ]),
    "go.memory.used": ("By", [("go.memory.used", 1)]),
    "go.memory.allocated": ("By", [
        ("go.memory.allocated", 1), ("go_memstats_alloc_bytes_total", 1), ("go_gc_heap_allocs_bytes_total", 1),
    ]),
    "go.memory.allocations": ("{allocation}", [
        ("go.memory.allocations", 1), ("go_memstats_mallocs_total", 1), ("go_gc_heap_allocs_objects_total", 1),
    ]),
    "go.memory.frees": ("{allocation}", [("go_memstats_frees_total", 1), ("go_gc_heap_frees_objects_total", 1)]),
    "go.memory.gc.cycles": ("{gc_cycle}", [
        ("go.memory.gc.cycles", 1), ("process.runtime.go.gc.count", 1), ("runtime.go.gc.count", 1),
        ("go_gc_cycles_total_gc_cycles_total", 1),
    ]),
    # Histograms and summaries: stored as `<name>.count` and `<name>.sum` rows (see otlp_metrics).
    "go.memory.gc.pause.duration": ("s", [
        ("go.memory.gc.pause.duration", 1), ("process.runtime.go.gc.pause_ns", 1e-9),
        ("runtime.go.gc.pause_ns", 1e-9), ("go_gc_duration_seconds", 1), ("go_gc_pauses_seconds", 1),
    ]),
    # A counter of all pause time: the same quantity as the pause histogram's sum.
    "go.memory.gc.pause.duration.sum": ("s", [
        ("process.runtime.go.gc.pause_total_ns", 1e-9), ("runtime.go.gc.pause_total_ns", 1e-9),
    ]),
    "go.schedule.duration": ("s", [("go.schedule.duration", 1), ("go_sched_latencies_seconds", 1)]),
    "go.cpu.time": ("s", [("go.cpu.time", 1)]),
    "go.memory.heap.alloc": ("By", [
        ("process.runtime.go.mem.heap_alloc", 1), ("runtime.go.mem.heap_alloc", 1),
        ("go_memstats_heap_alloc_bytes", 1), ("go_memstats_alloc_bytes", 1),
    ]),
    "go.memory.heap.idle": ("By", [
        ("process.runtime.go.mem.heap_idle", 1), ("runtime.go.mem.heap_idle", 1), ("go_memstats_heap_idle_bytes", 1),
    ]),
    "go.memory.heap.inuse": ("By", [
        ("process.runtime.go.mem.heap_inuse", 1), ("runtime.go.mem.heap_inuse", 1),
        ("go_memstats_heap_inuse_bytes", 1),
    ]),
    "go.memory.heap.objects": ("{object}", [
        ("process.runtime.go.mem.heap_objects", 1), ("runtime.go.mem.heap_objects", 1),
        ("go_memstats_heap_objects", 1),
    ]),
    "go.memory.heap.released": ("By", [
        ("process.runtime.go.mem.heap_released", 1), ("runtime.go.mem.heap_released", 1),
        ("go_memstats_heap_released_bytes", 1),
    ]),
    "go.memory.heap.sys": ("By", [
        ("process.runtime.go.mem.heap_sys", 1), ("runtime.go.mem.heap_sys", 1), ("go_memstats_heap_sys_bytes", 1),
    ]),
    "go.memory.heap.live": ("By", [("go_gc_heap_live_bytes", 1)]),
    "go.memory.live_objects": ("{object}", [
        ("process.runtime.go.mem.live_objects", 1), ("runtime.go.mem.live_objects", 1),
    ]),
    "go.memory.lookups": ("{lookup}", [
        ("process.runtime.go.mem.lookups", 1), ("runtime.go.mem.lookups", 1), ("go_memstats_lookups_total", 1),
    ]),
    "go.memory.sys": ("By", [("go_memstats_sys_bytes", 1)]),
    "go.memory.stack.inuse": ("By", [("go_memstats_stack_inuse_bytes", 1)]),
    "go.memory.stack.sys": ("By", [("go_memstats_stack_sys_bytes", 1)]),
    "go.memory.gc.sys": ("By", [("go_memstats_gc_sys_bytes", 1)]),
    "go.memory.gc.last_time": ("s", [("go_memstats_last_gc_time_seconds", 1)]),
    "go.memory.gc.cpu_fraction": ("1", [("go_memstats_gc_cpu_fraction", 1)]),
    "go.cgo.calls": ("{call}", [("process.runtime.go.cgo.calls", 1), ("runtime.go.cgo.calls", 1)]),
    "go.thread.count": ("{thread}", [("go_threads", 1)]),
    "go.uptime": ("s", [("runtime.uptime", 1e-3)]),
    "go.info": ("1", [("go_info", 1)]),
}

ALIASES: dict[str, tuple[Canonical, float]] = {
    source: (Canonical(name, unit), scale)
    for name, (unit, sources) in _TABLE.items()
    for source, scale in sources
}

# Declared OTLP units (UCUM) -> factor to the canonical unit.
UNIT_SCALE: dict[str, float] = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0,
    "By": 1.0, "KiBy": 1024.0, "MiBy": 1024.0**2, "GiBy": 1024.0**3, "kBy": 1e3, "MBy": 1e6, "GBy": 1e9,
}


def lookup(name: str, declared_unit: str, *, monotonic_sum: bool = False) -> tuple[Canonical, float] | None:
    """The canonical name for a metric and the factor that converts its values, or None if not Go runtime.

    A declared unit that is a time or size unit decides the factor (a producer that says `ns` gets 1e-9);
    otherwise the table's per-name default applies (Prometheus names carry the unit in the name, the
    deprecated `*_ns` metrics had no unit before contrib 0.63.0). `go_memstats_alloc_bytes` is a gauge
    (heap in use) but the Collector's Prometheus receiver may strip `_total` from the counter of the same
    stem: a monotonic sum under that name is the allocation counter.
    """
    found = ALIASES.get(name)
    if monotonic_sum and not name.endswith("_total") and name.startswith("go_"):
        found = ALIASES.get(name + "_total", found)
    if found is None:
        return None
    canonical, default_scale = found
    if canonical.unit in ("s", "By") and declared_unit in UNIT_SCALE:
        return canonical, UNIT_SCALE[declared_unit]
    return canonical, default_scale


def is_runtime_metric(name: str) -> bool:
    return name in ALIASES


def mapping_table() -> list[tuple[str, str, list[str]]]:
    """(canonical, unit, source names) rows, for documentation and tests."""
    return [(name, unit, [s for s, _ in sources]) for name, (unit, sources) in _TABLE.items()]
