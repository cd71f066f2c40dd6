"""Field-by-field checks of Go runtime lines, every wording in the reference, and the repair of split lines."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from pipeline.normalize import runtime_lines as rl
from pipeline.normalize.gctrace import GctraceStream, LineStats, normalize_lines, repair, stream_span_ns
from pipeline.normalize.rows import Rows

OBS_NS = 1_764_000_000_123_456_000  # an observed time, unix ns
RECEIVED = datetime(2025, 11, 24, 16, 0, tzinfo=UTC)


def run(lines: list[str], observed: int | list[int] = OBS_NS, **kw) -> tuple[Rows, LineStats]:
    rows = Rows()
    stats = normalize_lines(lines, observed_ns=observed, service="api", instance="i-1", source="test",
                            received_at=RECEIVED, rows=rows, **kw)
    assert stats.lines == stats.events + stats.other_runtime + stats.logs + stats.quarantined + stats.blank
    return rows, stats


def row(rows: Rows, table: str, index: int = 0) -> dict:
    cols = rows.tables[table]
    return {name: values[index] for name, values in cols.items()}


def only(line: str, table: str) -> dict:
    rows, stats = run([line])
    assert stats.quarantined == 0 and stats.logs == 0, rows.tables.get("quarantine")
    assert rows.count(table) == 1
    return row(rows, table)


# --- gctrace summary lines -------------------------------------------------------------------------------

GO119 = ("gc 7 @0.260s 0%: 0.017+0.078+0.001 ms clock, 0.035+0/0.054/0.040+0.003 ms cpu, 64->64->0 MB, "
         "129 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)")
GO127 = ("gc 100 @1.391s 38%: 0.056+11+0.040 ms clock, 0.11+11/0.032/0+0.080 ms cpu, 54->60->54 MB, 54 MB goal, "
         "0 MB stacks, 0 MB globals, 2 P")
GO127_LEAK = ("gc 26 @150.012s 0% (checking for goroutine leaks): 0.71+1.6+0.073 ms clock, 1.4+0/0.58/0+0.14 ms "
              "cpu, 22->22->0 MB, 35 MB goal, 3 MB stacks, 1 MB globals, 2 P (forced)")


def test_parse_gc_fields_by_name() -> None:
    """parse_gc builds its tuple by position for speed: every field, each with a value of its own, is checked
    by name, so a field added to or moved in GcFields cannot shift the others unnoticed."""
    line = ("gc 11 @12.345s 13% (checking for goroutine leaks): 0.14+15+0.16 ms clock, 0.17+18/0.19/20+0.21 ms cpu, "
            "22->23->24 MB, 25 MB goal, 26 MB stacks, 27 MB globals, 28 P (forced)")
    expected = {
        "gc_num": 11, "since_us": 12_345_000, "gc_cpu_pct": 13, "stw_sweep_term_ms": 0.14, "mark_ms": 15.0,
        "stw_mark_term_ms": 0.16, "cpu_sweep_term_ms": 0.17, "cpu_assist_ms": 18.0, "cpu_background_ms": 0.19,
        "cpu_idle_ms": 20.0, "cpu_mark_term_ms": 0.21, "heap_start_mb": 22, "heap_end_mb": 23, "heap_live_mb": 24,
        "heap_goal_mb": 25, "stacks_mb": 26, "globals_mb": 27, "procs": 28, "forced": 1, "leak_check": 1,
        "format": "go1.26", "clock_us": 15_300,
    }
    parsed = rl.parse_gc(line)
    assert parsed is not None and type(parsed) is rl.GcFields
    assert set(expected) == set(rl.GC_FIELDS)
    assert parsed._asdict() == expected
    plain = rl.parse_gc(line.replace(" (checking for goroutine leaks)", "").replace(", 26 MB stacks, 27 MB globals",
                                                                                   ""))
    assert plain is not None and (plain.format, plain.stacks_mb, plain.globals_mb, plain.leak_check) == (
        "go1.6", None, None, 0)


def test_go119_forced_line_field_by_field() -> None:
    r = only(GO119, "gc_events")
    assert (r["service"], r["instance"], r["source"]) == ("api", "i-1", "test")
    assert r["gc_num"] == 7 and r["since_start_s"] == 0.26 and r["gc_cpu_pct"] == 0
    assert (r["stw_sweep_term_ms"], r["mark_ms"], r["stw_mark_term_ms"]) == (0.017, 0.078, 0.001)
    assert (r["cpu_sweep_term_ms"], r["cpu_assist_ms"], r["cpu_background_ms"], r["cpu_idle_ms"],
            r["cpu_mark_term_ms"]) == (0.035, 0.0, 0.054, 0.040, 0.003)
    assert (r["heap_start_mb"], r["heap_end_mb"], r["heap_live_mb"], r["heap_goal_mb"]) == (64, 64, 0, 129)
    assert (r["stacks_mb"], r["globals_mb"], r["procs"]) == (0, 0, 2)
    assert (r["forced"], r["leak_check"], r["format"], r["incarnation"]) == (1, 0, "go1.18", 0)
    # Observed mode: the line is printed at the end of the cycle.
    clock_us = 17 + 78 + 1
    assert r["ts"] == OBS_NS // 1000 - clock_us
    assert r["process_start"] == r["ts"] - 260_000
    assert r["received_at"] == int(RECEIVED.timestamp() * 1000)


def test_go127_line_field_by_field() -> None:
    r = only(GO127, "gc_events")
    assert r["gc_num"] == 100 and r["since_start_s"] == 1.391 and r["gc_cpu_pct"] == 38
    assert (r["stw_sweep_term_ms"], r["mark_ms"], r["stw_mark_term_ms"]) == (0.056, 11.0, 0.040)
    assert (r["cpu_sweep_term_ms"], r["cpu_assist_ms"], r["cpu_background_ms"], r["cpu_idle_ms"],
            r["cpu_mark_term_ms"]) == (0.11, 11.0, 0.032, 0.0, 0.080)
    assert (r["heap_start_mb"], r["heap_end_mb"], r["heap_live_mb"], r["heap_goal_mb"]) == (54, 60, 54, 54)
    assert (r["forced"], r["leak_check"], r["format"]) == (0, 0, "go1.18")
    assert r["ts"] == OBS_NS // 1000 - 11_096


def test_go127_leak_check_line() -> None:
    r = only(GO127_LEAK, "gc_events")
    assert (r["gc_num"], r["since_start_s"], r["gc_cpu_pct"]) == (26, 150.012, 0)
    assert (r["forced"], r["leak_check"], r["format"]) == (1, 1, "go1.26")
    assert (r["stacks_mb"], r["globals_mb"], r["heap_live_mb"], r["heap_goal_mb"]) == (3, 1, 0, 35)
    assert (r["cpu_sweep_term_ms"], r["cpu_background_ms"], r["cpu_mark_term_ms"]) == (1.4, 0.58, 0.14)


def test_go16_to_117_line_has_no_stacks_or_globals() -> None:
    r = only("gc 12 @3.123s 2%: 0.020+1.5+0.045 ms clock, 0.080+0.10/1.2/2.5+0.18 ms cpu, 4->5->2 MB, "
             "5 MB goal, 4 P", "gc_events")
    assert (r["gc_num"], r["since_start_s"], r["procs"], r["format"]) == (12, 3.123, 4, "go1.6")
    assert r["stacks_mb"] is None and r["globals_mb"] is None
    assert (r["cpu_assist_ms"], r["cpu_background_ms"], r["cpu_idle_ms"]) == (0.10, 1.2, 2.5)
    r = only("gc 3 @0.101s 1%: 30+0+0.09 ms clock, 30+0/0/0+0.09 ms cpu, 1->1->0 MB, 4 MB goal, 1 P (forced)",
             "gc_events")
    assert (r["forced"], r["stw_sweep_term_ms"], r["format"]) == (1, 30.0, "go1.6")


def test_go15_five_phase_lines_and_dev_builds() -> None:
    r = only("gc 4 @1.002s 3%: 0.11+2.0+0.30+5.5+0.25 ms clock, 0.22+2.0+0+1.1/4.4/0.5+0.50 ms cpu, "
             "10->12->6 MB, 11 MB goal, 2 P", "gc_events")
    assert (r["gc_num"], r["format"], r["stw_sweep_term_ms"], r["stw_mark_term_ms"]) == (4, "go1.5", 0.11, 0.25)
    assert r["mark_ms"] == pytest.approx(2.0 + 0.30 + 5.5)
    assert (r["cpu_sweep_term_ms"], r["cpu_assist_ms"], r["cpu_idle_ms"], r["cpu_mark_term_ms"]) == (
        0.22, 1.1, 0.5, 0.50)
    assert r["cpu_background_ms"] == pytest.approx(4.4 + 2.0 + 0)
    assert (r["heap_goal_mb"], r["stacks_mb"]) == (11, None)
    # Development builds: 'gc #N', sometimes without the goal.
    r = only("gc #1 @0.240s 37%: 0+37+18+9+43 ms clock, 0+37+0+0/9/0+43 ms cpu, 4->5->2 MB, 4 MB goal, 1 P",
             "gc_events")
    assert (r["gc_num"], r["mark_ms"], r["heap_goal_mb"], r["format"]) == (1, 64.0, 4, "go1.5")
    r = only("gc #2 @0.300s 30%: 0+1+0+2+1 ms clock, 0+1+0+0/2/0+1 ms cpu, 4->5->2 MB, 1 P (forced)", "gc_events")
    assert (r["gc_num"], r["heap_goal_mb"], r["forced"]) == (2, None, 1)


@pytest.mark.parametrize("prefix", [
    "Feb 26 13:56:33.456 ", "2026-02-26T13:56:33.456789Z stderr F ", "<14>web-1[231]: ", "\t",
])
def test_shipper_prefixes_are_skipped(prefix: str) -> None:
    r = only(prefix + GO127, "gc_events")
    assert (r["gc_num"], r["heap_end_mb"]) == (100, 60)
    n = only(prefix + "scav 0 KiB work (bg), 544 KiB work (eager), 3008 KiB now, 100% util", "scavenger_events")
    assert n["work_eager_kib"] == 544
    n = only(prefix + "GC forced", "runtime_notices")
    assert n["kind"] == "gc_forced"


def test_large_since_start_and_trailing_carriage_return() -> None:
    r = only("gc 9 @18446653480.186s 0%: 0+0+0 ms clock, 0+0/0/0+0 ms cpu, 0->0->0 MB, 4 MB goal, 8 P\r\n",
             "gc_events")
    assert r["since_start_s"] == 18446653480.186 and r["procs"] == 8


# --- scavenger lines in every wording --------------------------------------------------------------------

def test_scav_go121_plus() -> None:
    r = only("scav 0 KiB work (bg), 472 KiB work (eager), 40016 KiB now, 99% util (forced)", "scavenger_events")
    assert (r["kind"], r["format"], r["work_bg_kib"], r["work_eager_kib"], r["released_kib"], r["util_pct"]) == (
        "scav", "go1.21", 0, 472, 40016, 99)
    assert (r["forced"], r["controller_reset"], r["generation"]) == (1, 0, None)
    r = only("scav 12 KiB work (bg), 0 KiB work (eager), 3008 KiB now, 100% util [controller reset]",
             "scavenger_events")
    assert (r["work_bg_kib"], r["forced"], r["controller_reset"]) == (12, 0, 1)


def test_scav_go114_and_go119() -> None:
    r = only("scav 1256 KiB work, 35824 KiB total, 98% util (forced)", "scavenger_events")
    assert (r["format"], r["work_bg_kib"], r["work_eager_kib"], r["released_kib"], r["util_pct"], r["forced"]) == (
        "go1.14", 1256, None, 35824, 98, 1)
    r = only("scav 0 KiB work, 3312 KiB total, 91% util", "scavenger_events")
    assert (r["released_kib"], r["forced"], r["controller_reset"]) == (3312, 0, 0)


def test_scav_go115_to_118_with_generation() -> None:
    r = only("scav 7 64 KiB work, 1024 KiB total, 93% util [controller reset]", "scavenger_events")
    assert (r["format"], r["generation"], r["work_bg_kib"], r["released_kib"], r["util_pct"]) == (
        "go1.15", 7, 64, 1024, 93)
    assert r["controller_reset"] == 1


def test_scvg_lines_up_to_go113() -> None:
    r = only("scvg: 3 MB released", "scavenger_events")
    assert (r["kind"], r["format"], r["released_delta_mb"], r["forced"]) == ("scvg_released", "go1.13", 3, 0)
    r = only("forced scvg: inuse: 5, idle: 10, sys: 15, released: 8, consumed: 7 (MB)", "scavenger_events")
    assert (r["kind"], r["inuse_mb"], r["idle_mb"], r["sys_mb"], r["released_kib"], r["consumed_mb"],
            r["forced"]) == ("scvg_stats", 5, 10, 15, 8 * 1024, 7, 1)
    r = only("scvg12: inuse: 1, idle: 2, sys: 3, released: 0, consumed: 3 (MB)", "scavenger_events")
    assert (r["format"], r["generation"], r["forced"]) == ("go1.5", 12, 0)
    r = only("scvg-1: 60 MB released", "scavenger_events")
    assert (r["generation"], r["released_delta_mb"], r["forced"]) == (-1, 60, 1)


# --- pacer lines in both float styles ---------------------------------------------------------------------

def test_pacer_assist_both_float_styles() -> None:
    r = only("pacer: assist ratio=0.06450725975505206 (scan 3 MB in 46->48 MB) workers=0+0.25", "pacer_events")
    assert (r["kind"], r["assist_ratio"], r["scan_mb"], r["heap_live_start_mb"], r["heap_goal_mb"]) == (
        "assist", 0.06450725975505206, 3, 46, 48)
    assert (r["workers_dedicated"], r["workers_fractional"], r["cpu_util_pct"]) == (0, 0.25, None)
    r = only("pacer: assist ratio=+1.145543e-001 (scan 2 MB in 43->45 MB) workers=0++2.500000e-001",
             "pacer_events")
    assert (r["assist_ratio"], r["workers_fractional"], r["heap_goal_mb"]) == (0.1145543, 0.25, 45)
    r = only("pacer: assist ratio=+Inf (scan 0 MB in 4->4 MB) workers=1+0", "pacer_events")
    assert math.isinf(r["assist_ratio"]) and r["workers_dedicated"] == 1


def test_pacer_end_go118_plus_both_float_styles() -> None:
    r = only("pacer: 26% CPU (25 exp.) for 2920464+8640+152970 B work (152970 B exp.) in 48586752 B -> "
             "55754752 B (∆goal 7075230, cons/mark 0)", "pacer_events")
    assert (r["kind"], r["cpu_util_pct"], r["cpu_util_goal_pct"], r["heap_scan_work_b"], r["stack_scan_work_b"],
            r["globals_scan_work_b"], r["expected_work_b"], r["heap_trigger_b"], r["heap_live_b"],
            r["goal_delta_b"], r["cons_mark"], r["controller_reset"]) == (
        "end", 26, 25, 2920464, 8640, 152970, 152970, 48586752, 55754752, 7075230, 0.0, 0)
    r = only("pacer: 25% CPU (25 exp.) for 130352+16576+252464 B work (252464 B exp.) in 3997696 B -> 4096000 B "
             "(∆goal -98304, cons/mark +2.492501e-001)[controller reset]", "pacer_events")
    assert (r["goal_delta_b"], r["cons_mark"], r["controller_reset"]) == (-98304, 0.2492501, 1)


def test_pacer_end_go117_and_older() -> None:
    r = only("pacer: H_m_prev=4194304 h_t=+8.500000e-001 H_T=7759462 h_a=+9.000000e-001 H_a=7969177 "
             "h_g=+1.000000e+000 H_g=8388608 u_a=+2.500000e-001 u_g=+3.000000e-001 W_a=308200 "
             "goalΔ=+1.500000e-001 actualΔ=+5.000000e-002 u_a/u_g=+8.333333e-001", "pacer_events")
    assert (r["kind"], r["heap_trigger_b"], r["heap_live_b"], r["goal_delta_b"], r["heap_scan_work_b"]) == (
        "end_old", 7759462, 7969177, 7969177 - 8388608, 308200)
    assert r["cpu_util_pct"] == pytest.approx(25) and r["cpu_util_goal_pct"] == pytest.approx(30)
    assert r["fields"]["H_m_prev"] == 4194304 and r["fields"]["u_a/u_g"] == 0.8333333 and len(r["fields"]) == 13


def test_pacer_sweep_done_both_float_styles() -> None:
    r = only("pacer: sweep done at heap size 0MB; allocated 0MB during sweep; swept 153 pages at "
             "5.6457564575645754e-05 pages/byte", "pacer_events")
    assert (r["kind"], r["sweep_heap_mb"], r["sweep_allocated_mb"], r["swept_pages"], r["pages_per_byte"]) == (
        "sweep_done", 0, 0, 153, 5.6457564575645754e-05)
    r = only("pacer: sweep done at heap size 51MB; allocated 2MB during sweep; swept 6806 pages at "
             "+8.308105e-001 pages/byte", "pacer_events")
    assert (r["sweep_heap_mb"], r["sweep_allocated_mb"], r["pages_per_byte"]) == (51, 2, 0.8308105)


# --- other runtime lines ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "kind"), [
    ("GC forced", "gc_forced"),
    ("scan: total 346353+39+15=346407 objs, 12+3=15 spans", "scan"),
    ("scan: class L 2+0+0=2 objs, 0+0=0 spans", "scan"),
    ("scan: class 64B 346329+4+0=346333 objs, 1+0=1 spans", "scan"),
    ("scan: total 1234 objs", "scan"),
    ("scan: class 16B 99 objs", "scan"),
    ("SCHED 1004ms: gomaxprocs=2 idleprocs=2 threads=5 spinningthreads=0 idlethreads=2 runqueue=0 [0 0]", "sched"),
    ("init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs", "init"),
    ("checkfinalizers: queue: 3 finalizers + 1 cleanups", "checkfinalizers"),
    ("runtime: program exceeds 10000-thread limit", "runtime_warning"),
    ("Feb 26 13:56:33 runtime: failed to create new OS thread", "runtime_warning"),
])
def test_other_runtime_lines_are_classified(line: str, kind: str) -> None:
    r = only(line, "runtime_notices")
    assert (r["kind"], r["raw"]) == (kind, line)


def test_application_lines_go_to_logs_not_quarantine() -> None:
    lines = ["00:04:28.434101 app: served=2000 goroutines=3", "app: running gc soon", "error in runtime: x",
             "", "panic: boom", "goroutine 1 [running]:"]
    rows, stats = run(lines)
    assert (stats.logs, stats.blank, stats.quarantined, stats.events) == (5, 1, 0, 0)
    assert rows.tables["otel_logs"]["Body"] == [line for line in lines if line]
    assert rows.tables["otel_logs"]["Timestamp"] == [OBS_NS // 1000 * 1000] * 5
    assert rows.tables["otel_logs"]["ResourceAttributes"][0]["service.instance.id"] == "i-1"


# --- broken lines: repair and quarantine ------------------------------------------------------------------

# The seven splits seen in the captures (tests/data/go-runtime): prefix + app line, then the suffix.
SPLITS = [
    ("gc 18 @0.303s 35%: 0.18+12+0.030 ms clock, 0.36+9.6/2.6/0.083+0.060 ms cpu, 54->60->54 MB, 54 MB goal, "
     "0 MB stacks, ", "app: tick allocated=94MiB goroutines=3", "0 MB globals, 2 P"),
    ("gc ", "app: tick allocated=90MiB goroutines=3",
     "19 @0.230s 23%: 0.12+7.7+0.021 ms clock, 0.24+4.6/0.98/0+0.043 ms cpu, 54->60->54 MB, 54 MB goal, "
     "0 MB stacks, 0 MB globals, 2 P"),
    ("gc 31 @0.381s 24%: 0.045+7.7+0.023 ms clock, 0.090+4.7/0.83/0+", "app: tick allocated=154MiB goroutines=3",
     "0.047 ms cpu, 54->60->54 MB, 54 MB goal, 0 MB stacks, 0 MB globals, 2 P"),
    ("pacer: sweep done at heap size ", "app: tick allocated=161MiB goroutines=3",
     "54MB; allocated 0MB during sweep; swept 7832 pages at 0 pages/byte"),
    ("scav 0 KiB work, 3424", "app: tick allocated=690MiB goroutines=3", " KiB total, 89% util"),
    ("scav 0 KiB work (bg), 0", "app: tick allocated=51MiB goroutines=3",
     " KiB work (eager), 3192 KiB now, 87% util"),
    ("scav 0 KiB work (bg), 0 KiB work (eager), 3064 KiB now, 86", "app: tick allocated=100MiB goroutines=3",
     "% util"),
]


@pytest.mark.parametrize(("prefix", "foreign", "suffix"), SPLITS)
def test_split_lines_from_the_captures_are_repaired(prefix: str, foreign: str, suffix: str) -> None:
    whole = prefix + suffix
    expected, _ = run([whole])
    rows, stats = run([prefix + foreign, suffix, "app: after"], observed=[OBS_NS, OBS_NS + 5000, OBS_NS + 9000])
    assert (stats.lines, stats.repaired, stats.quarantined, stats.logs) == (3, 1, 0, 2)
    assert rows.tables["otel_logs"]["Body"] == [foreign, "app: after"]
    table = next(t for t in expected.tables if t != "otel_logs")
    got, want = row(rows, table), row(expected, table)
    if table == "gc_events":  # the repaired line was complete when its suffix was observed
        assert got.pop("ts") == want.pop("ts") + 5 and got.pop("process_start") == want.pop("process_start") + 5
    else:
        got.pop("ts"), want.pop("ts")
    assert got == want


def test_repair_prefers_a_line_start_and_keeps_the_shipper_prefix() -> None:
    # The foreign text starts with digits (a log timestamp): the split must not steal them.
    _kind, _parsed, line, foreign = repair("scav 0 KiB work, 3424" + "00:04:28.434101 app: x", " KiB total, 9% util")
    assert line == "scav 0 KiB work, 3424 KiB total, 9% util" and foreign == "00:04:28.434101 app: x"
    rows, stats = run(["Feb 26 13:56:33.456 gc 5 @0.013s 8%: 0.081+0.19+0.002 ms clock, app: tick",
                       "Feb 26 13:56:33.457 0.16+0/0.15/0.049+0.005 ms cpu, 32->32->32 MB, 57 MB goal, 0 MB stacks, "
                       "0 MB globals, 2 P (forced)"])
    assert (stats.events, stats.repaired, stats.quarantined) == (1, 1, 0)
    assert rows.tables["gc_events"]["forced"] == [1]
    assert rows.tables["otel_logs"]["Body"] == ["Feb 26 13:56:33.456 app: tick"]


def test_repair_skips_an_application_line_in_between() -> None:
    prefix, foreign, suffix = SPLITS[0]
    _rows, stats = run([prefix + foreign, "app: another line", suffix])
    assert (stats.events, stats.repaired, stats.logs, stats.quarantined) == (1, 1, 2, 0)


def test_unrepairable_pieces_are_quarantined_with_precise_reasons() -> None:
    prefix, foreign, suffix = SPLITS[0]
    rows, stats = run([prefix + foreign, "app: x", "app: y", GO127, suffix],
                      quarantine={"topic": "gctrace", "partition": 3, "offset": 42})
    assert (stats.events, stats.quarantined, stats.logs) == (1, 2, 2)
    q = rows.tables["quarantine"]
    assert q["raw"] == [prefix + foreign, suffix]
    assert q["reason"][0].startswith(
        "gc line (go1.18+): expected ', <GL> MB globals' at column 115, found ', app: tick")
    assert "no following line completes it" in q["reason"][0]
    assert q["reason"][1] == "tail of a runtime line ('MB globals') without its beginning"
    assert (q["signal"], q["topic"], q["partition"], q["offset"]) == (["gctrace"] * 2, ["gctrace"] * 2, [3, 3],
                                                                      [42, 42])
    rows, stats = run(["gc 5 @0.1s 1%: 0.1+0.2+0.3 ms clock, garbage", "pacer: assist ratio=x (scan 1 MB)",
                       "scav 1 KiB work (bg), lots"])
    assert stats.quarantined == 3
    reasons = rows.tables["quarantine"]["reason"]
    assert "expected '<p1>+<assist>/<background>/<idle>+<p3> ms cpu, ' at column 38" in reasons[0]
    assert reasons[1].startswith("pacer line (cycle start): expected 'pacer: assist ratio=<F>' at column 1")
    assert reasons[2].startswith("scavenger line (go1.21+): expected ', <EG> KiB work (eager)' at column 21")


# --- time anchoring ---------------------------------------------------------------------------------------

def _gc(n: int, at: str, clock: str = "1.0+2.0+0.5") -> str:
    return (f"gc {n} @{at}s 5%: {clock} ms clock, 2.0+0.5/1.0/0+1.0 ms cpu, 4->5->3 MB, 5 MB goal, 0 MB stacks, "
            "0 MB globals, 2 P")


def test_stream_mode_anchors_on_start_and_opens_incarnations_on_restart() -> None:
    start_ns = 1_764_000_000_000_000_000
    stream = GctraceStream(service="api", instance="i-1", source="file", received_at=RECEIVED, start_ns=start_ns,
                           name="app.log")
    rows = Rows()
    lines = [_gc(1, "0.100"), "scav 0 KiB work, 10 KiB total, 9% util", _gc(2, "1.500"),
             _gc(1, "0.200"),   # restart: gc_num went back
             _gc(2, "0.900"), _gc(3, "0.800")]  # @ went back: another restart
    stream.feed(lines, rows)
    stream.finish(rows)
    gc = rows.tables["gc_events"]
    start_us = start_ns // 1000
    end2 = start_us + 1_500_000 + 3500
    assert gc["incarnation"] == [1, 1, 2, 2, 3]
    assert gc["ts"] == [start_us + 100_000, start_us + 1_500_000, end2 + 200_000, end2 + 900_000,
                        end2 + 900_000 + 3500 + 800_000]
    assert gc["process_start"] == [start_us, start_us, end2, end2, end2 + 900_000 + 3500]
    scav = rows.tables["scavenger_events"]
    assert (scav["ts"], scav["after_gc_num"], scav["incarnation"]) == ([start_us + 100_000 + 3500], [1], [1])
    assert stream.stats.events == 5 and stream.stats.lines == 6


def test_stream_repairs_across_batch_boundaries_and_numbers_lines() -> None:
    prefix, foreign, suffix = SPLITS[0]
    stream = GctraceStream(service="api", instance="i-1", source="file", received_at=RECEIVED, start_ns=0,
                           name="app.log")
    rows = Rows()
    stream.feed([GO127, prefix + foreign + "\n"], rows)
    stream.feed([suffix + "\n", "0 MB globals, 2 P"], rows)
    stream.finish(rows)
    assert (stream.stats.lines, stream.stats.events, stream.stats.repaired, stream.stats.quarantined) == (4, 2, 1, 1)
    assert rows.tables["quarantine"]["location"] == ["app.log:4"]


def test_stream_without_start_uses_the_clock_at_the_first_gc_line() -> None:
    now = iter([5_000_000_000_000, 9_000_000_000_000])
    stream = GctraceStream(service="api", instance="i-1", source="stdin", received_at=RECEIVED, start_ns=None,
                           now_ns=lambda: next(now))
    rows = Rows()
    stream.feed([_gc(1, "2.000"), _gc(2, "3.000")], rows)
    stream.finish(rows)
    start = 5_000_000_000 - 2_000_000 - 3500
    assert rows.tables["gc_events"]["ts"] == [start + 2_000_000, start + 3_000_000]


def test_observed_mode_is_deterministic_and_accepts_one_time_for_all() -> None:
    lines = [_gc(1, "0.100"), "app: x", _gc(2, "0.200")]
    a, _ = run(lines, observed=[OBS_NS, OBS_NS + 1000, OBS_NS + 2000])
    b, _ = run(lines, observed=[OBS_NS, OBS_NS + 1000, OBS_NS + 2000])
    assert a.tables == b.tables
    c, _ = run(lines)
    assert c.tables["gc_events"]["ts"] == [OBS_NS // 1000 - 3500] * 2
    with pytest.raises(ValueError):
        run(lines, observed=[OBS_NS])


def test_stream_span_covers_all_incarnations() -> None:
    assert stream_span_ns([_gc(1, "0.100"), _gc(2, "1.500"), _gc(1, "0.200")]) == (1_500_000 + 3500 + 200_000
                                                                                     + 3500) * 1000
    assert stream_span_ns(["app: nothing"]) is None


def test_a_line_torn_right_after_its_procs_number_is_rebuilt() -> None:
    """Real Go 1.27 output (GODEBUG=gctrace=1, a program printing while a forced cycle ends): the application
    wrote into the gc line between `2` and ` P (forced)`, so the continuation holds no number at all."""
    lines = [
        "gc 105 @0.089s 16%: 0.040+0.075+0.003 ms clock, 0.081+0/0.077/0.052+0.006 ms cpu, 4->4->0 MB, 7 MB goal, "
        "0 MB stacks, 0 MB globals, 2gcchurn: forced cycle 0",
        " P (forced)",
        "gc 106 @0.089s 16%: 0.087+0.71+0.004 ms clock, 0.17+0/0.19/0.017+0.008 ms cpu, 0->0->0 MB, 4 MB goal, "
        "0 MB stacks, 0 MB globals, 2 P (forced)",
    ]
    rows = Rows()
    stats = normalize_lines(lines, observed_ns=1_796_119_200_000_000_000, service="s", instance="i", source="file",
                            received_at=datetime(2026, 12, 6, tzinfo=UTC), rows=rows)
    gc = rows.tables["gc_events"]
    assert gc["gc_num"] == [105, 106] and gc["forced"] == [1, 1] and gc["procs"] == [2, 2]
    assert rows.count("quarantine") == 0 and stats.logs == 1
    assert rows.tables["otel_logs"]["Body"] == ["gcchurn: forced cycle 0"]
