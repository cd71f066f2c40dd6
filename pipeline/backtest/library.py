"""The generated scenario library: long, labelled series for what no short test of a real program shows.

Every scenario is built from a seed derived from its name, so the library is the same on every machine and
every run. All scenarios share one time base (`T0`) and use services named after themselves, so they load
into one store side by side and one run of each job window serves them all.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pipeline.backtest.rows import SpanWriter, diurnal, gauge, gc_cycles, goroutine_series
from pipeline.backtest.scenario import Label, Scenario

T0 = datetime(2026, 11, 2, tzinfo=UTC)
MIB = 1048576


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _rng(name: str) -> random.Random:
    return random.Random(zlib.crc32(name.encode()))


def _new(name: str, hours: float, description: str, evaluate_from: float | None = None) -> Scenario:
    return Scenario(name=name, description=description, start=T0, end=at(hours),
                    evaluate_from=None if evaluate_from is None else at(evaluate_from))


def _leak_label(sc: Scenario, instance: str, *, sick: bool = False, signal: str = "goroutines",
                onset: float | None = None, fair: float | None = None) -> None:
    sc.labels.append(Label(detection="leak_trends", service=sc.name, instance=instance, signal=signal, sick=sick,
                           onset=None if onset is None else at(onset), fair_from=None if fair is None else at(fair)))


def _gc_label(sc: Scenario, instance: str, *, kind: str = "", onset: float | None = None,
              fair: float | None = None) -> None:
    sc.labels.append(Label(detection="gc_storms", service=sc.name, instance=instance, sick=bool(kind), kind=kind,
                           onset=None if onset is None else at(onset), fair_from=None if fair is None else at(fair)))


def _flat(level: float) -> Callable[[float], float]:
    return lambda h: level


# -- goroutine leaks: healthy ----------------------------------------------------------------------------
def flat_noisy() -> Scenario:
    sc = _new("flat-noisy", 12, "Three instances with a flat goroutine count, 5 % noise and counter spikes.")
    rng = _rng(sc.name)
    for i in range(3):
        sc.add_rows("runtime_metrics", goroutine_series(sc.name, f"i{i}", T0, sc.end, _flat(400 + 150 * i),
                                                        rng=rng, noise=0.05, spikes=0.03))
        _leak_label(sc, f"i{i}")
    return sc


def periodic_load() -> Scenario:
    sc = _new("periodic-load", 12, "Busy but flat: goroutines swing with a 2.5 h load cycle and 7 min bursts.")
    rng = _rng(sc.name)
    def curve(h: float) -> float:
        cycle = (1 + math.sin(2 * math.pi * h / 2.5)) / 2
        return 300 + 900 * cycle + 200 * max(0.0, math.sin(2 * math.pi * h * 60 / 7))
    for i in range(2):
        sc.add_rows("runtime_metrics", goroutine_series(sc.name, f"i{i}", T0, sc.end,
                                                        lambda h, s=i: curve(h + 0.6 * s), rng=rng, noise=0.04))
        _leak_label(sc, f"i{i}")
    return sc


def diurnal_load() -> Scenario:
    sc = _new("diurnal-load", 40, "A daily cycle (150 at night, 1800 at the 14:00 peak) up to the second "
              "day's peak; judged after the first day, once a day of history shows the cycle.", evaluate_from=24)
    rng = _rng(sc.name)
    for i in range(2):
        sc.add_rows("runtime_metrics", goroutine_series(sc.name, f"i{i}", T0, sc.end, diurnal(150, 1800),
                                                        rng=rng, noise=0.04))
        _leak_label(sc, f"i{i}")
    return sc


def deploy_step() -> Scenario:
    sc = _new("deploy-step", 12, "A configuration change at 04:00 raises the worker pool once: 400 -> 750 "
              "goroutines, flat before and after (same process).")
    rng = _rng(sc.name)
    sc.add_rows("runtime_metrics", goroutine_series(sc.name, "i0", T0, sc.end, lambda h: 400 if h < 4 else 750,
                                                    rng=rng, noise=0.03))
    _leak_label(sc, "i0")
    return sc


def autoscaling() -> Scenario:
    sc = _new("autoscaling", 12, "Two steady instances and four that the autoscaler adds and removes, each "
              "filling its pools over a few minutes after start.")
    rng = _rng(sc.name)
    spans = [("base-0", 0, 12), ("base-1", 0, 12), ("scale-0", 2, 5), ("scale-1", 3.5, 7.5),
             ("scale-2", 6, 11), ("scale-3", 8.25, 9.75)]
    for name, a, b in spans:
        level = rng.uniform(350, 600)
        sc.add_rows("runtime_metrics", goroutine_series(
            sc.name, name, at(a), at(b), lambda h, lv=level: lv * min(1.0, 0.3 + h * 60 / 6),
            rng=rng, noise=0.04, process_start=at(a)))
        _leak_label(sc, name)
    return sc


def gaps() -> Scenario:
    sc = _new("gaps", 12, "A flat series with two 45-minute holes in the data (collector outages).")
    rng = _rng(sc.name)
    def hole(t: datetime) -> bool:
        h = (t - T0).total_seconds() / 3600
        return 3 <= h < 3.75 or 7.5 <= h < 8.25
    sc.add_rows("runtime_metrics", goroutine_series(sc.name, "i0", T0, sc.end, _flat(520), rng=rng, noise=0.05,
                                                    skip=hole))
    _leak_label(sc, "i0")
    return sc


def late_data() -> Scenario:
    sc = _new("late-data", 12, "A flat series where a quarter of the samples arrive 3-12 minutes late.")
    rng = _rng(sc.name)
    lag = random.Random(7)
    sc.add_rows("runtime_metrics", goroutine_series(
        sc.name, "i0", T0, sc.end, _flat(800), rng=rng, noise=0.04,
        late=lambda t: lag.uniform(180, 720) if lag.random() < 0.25 else 0.0))
    _leak_label(sc, "i0")
    return sc


def restarts_healthy() -> Scenario:
    sc = _new("restarts-healthy", 12, "A flat service restarted every 3 hours, each start ramping up its pools.")
    rng = _rng(sc.name)
    for k in range(4):
        boot = at(3 * k)
        sc.add_rows("runtime_metrics", goroutine_series(
            sc.name, "i0", boot, at(3 * k + 3), lambda h: 600 * min(1.0, 0.2 + h * 4), rng=rng, noise=0.04,
            process_start=boot))
    _leak_label(sc, "i0")
    return sc


# -- goroutine leaks: sick ------------------------------------------------------------------------------
def fast_leak() -> Scenario:
    sc = _new("fast-leak", 8, "Flat for two hours, then 150 goroutines per hour that never exit.")
    rng = _rng(sc.name)
    sc.add_rows("runtime_metrics", goroutine_series(sc.name, "i0", T0, sc.end,
                                                    lambda h: 400 + 150 * max(0.0, h - 2), rng=rng, noise=0.03))
    sc.add_rows("runtime_metrics", goroutine_series(sc.name, "i1", T0, sc.end, _flat(420), rng=rng, noise=0.03))
    _leak_label(sc, "i0", sick=True, onset=2, fair=3)
    _leak_label(sc, "i1")
    return sc


def slow_leak_day() -> Scenario:
    sc = _new("slow-leak-day", 26, "A slow leak: 3 % more goroutines per hour, compounding, for a day, "
              "under 4 % noise.")
    rng = _rng(sc.name)
    sc.add_rows("runtime_metrics", goroutine_series(sc.name, "i0", T0, sc.end, lambda h: 600 * 1.03 ** h,
                                                    rng=rng, noise=0.04))
    _leak_label(sc, "i0", sick=True, onset=0, fair=3.5)
    return sc


def sawtooth_leak() -> Scenario:
    sc = _new("sawtooth-leak", 16, "A leak of 200 goroutines per hour hidden by restarts every 5 hours "
              "(a sawtooth).")
    rng = _rng(sc.name)
    for k in range(4):
        boot = at(5 * k)
        sc.add_rows("runtime_metrics", goroutine_series(
            sc.name, "i0", boot, min(at(5 * k + 5), sc.end), lambda h: 300 + 200 * h, rng=rng, noise=0.03,
            process_start=boot))
    _leak_label(sc, "i0", sick=True, onset=0, fair=1.4)
    return sc


def leak_under_diurnal() -> Scenario:
    sc = _new("leak-under-diurnal", 40, "The daily cycle of diurnal-load with a leak of 60 goroutines per hour "
              "starting on the second day at 04:00: visible once the floor rises above yesterday's peak.",
              evaluate_from=24)
    rng = _rng(sc.name)
    base = diurnal(150, 1800)
    sc.add_rows("runtime_metrics", goroutine_series(sc.name, "i0", T0, sc.end,
                                                    lambda h: base(h) + 60 * max(0.0, h - 28), rng=rng, noise=0.04))
    _leak_label(sc, "i0", sick=True, onset=28, fair=35)
    return sc


def heap_leak() -> Scenario:
    sc = _new("heap-leak", 1.75, "Live heap rising 40 MiB per hour from 150 MiB (a cache without eviction); "
              "GC itself stays calm.")
    rng = _rng(sc.name)
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", T0, sc.end, rng=rng, period_s=_flat(20),
                                       live_mb=lambda h: 150 + 40 * h, goal_ratio=_flat(2.0), cpu_ms=_flat(8)))
    _leak_label(sc, "i0", sick=True, signal="heap_live", onset=0, fair=1.4)
    _gc_label(sc, "i0")
    return sc


def heap_flat() -> Scenario:
    sc = _new("heap-flat", 1.5, "Live heap oscillating with load around 300 MiB; GC calm.")
    rng = _rng(sc.name)
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", T0, sc.end, rng=rng, period_s=_flat(15),
                                       live_mb=lambda h: 300 + 60 * math.sin(2 * math.pi * h / 1.7),
                                       goal_ratio=_flat(2.0), cpu_ms=_flat(10)))
    _leak_label(sc, "i0", signal="heap_live")
    _gc_label(sc, "i0")
    return sc


# -- GC storms ------------------------------------------------------------------------------------------
def _storm(name: str, description: str, kind: str, *, live: Callable[[float], float],
           goal_ratio: Callable[[float], float], knobs: dict[str, float] | None = None,
           storm_period_s: float = 0.2, storm_cpu_ms: float = 250.0) -> Scenario:
    """Calm GC for 40 minutes, a storm from 0:40 to 1:20, calm again until 1:30."""
    sc = _new(name, 1.5, description)
    rng = _rng(name)
    a, b = 40 / 60, 80 / 60
    sc.add_rows("gc_events", gc_cycles(
        name, "i0", T0, sc.end, rng=rng, live_mb=live, goal_ratio=goal_ratio,
        period_s=lambda h: storm_period_s if a <= h < b else 15.0,
        cpu_ms=lambda h: storm_cpu_ms if a <= h < b else 8.0))
    sc.add_rows("gc_events", gc_cycles(name, "calm", T0, sc.end, rng=rng, live_mb=_flat(200),
                                       goal_ratio=_flat(2.0), period_s=_flat(12), cpu_ms=_flat(6)))
    for metric, value in (knobs or {}).items():
        sc.add_rows("runtime_metrics", gauge(name, "i0", metric, value, T0, sc.end))
    _gc_label(sc, "i0", kind=kind, onset=a, fair=a + 2 / 60)
    _gc_label(sc, "calm")
    return sc


def storm_allocation() -> Scenario:
    return _storm("storm-allocation", "Allocation outpaces the GC for 40 minutes: 5 cycles/s, 30 % GC CPU, "
                  "assists; heap and GOGC normal.", "allocation", live=_flat(180), goal_ratio=_flat(2.0))


def storm_limit_squeeze() -> Scenario:
    return _storm("storm-limit-squeeze", "GOMEMLIMIT=512MiB with a 470 MiB live heap: the goal is pinned at "
                  "the limit and the GC runs back to back.", "limit_squeeze", live=_flat(470),
                  goal_ratio=_flat(505 / 470), knobs={"go.memory.limit": 512 * MIB, "go.config.gogc": 100},
                  storm_period_s=0.3, storm_cpu_ms=200)


def storm_misconfiguration() -> Scenario:
    return _storm("storm-misconfiguration", "GOGC=5 with no memory limit: a cycle every few MiB allocated.",
                  "misconfiguration", live=_flat(220), goal_ratio=_flat(1.05), knobs={"go.config.gogc": 5},
                  storm_period_s=0.25, storm_cpu_ms=180)


def storm_leak_driven() -> Scenario:
    sc = _new("storm-leak-driven", 1.75, "A heap leak drives the GC: live heap +150 % per hour, and once it is "
              "large (after 1:30), marking it costs more CPU each cycle than the service can spare.")
    rng = _rng(sc.name)
    live = lambda h: 120 * (1 + 1.5 * h)  # noqa: E731
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", T0, sc.end, rng=rng, live_mb=live, goal_ratio=_flat(2.0),
                                       period_s=lambda h: 0.3 if h >= 1.5 else 10.0,
                                       cpu_ms=lambda h: 0.9 * live(h) if h >= 1.5 else 8.0))
    _gc_label(sc, "i0", kind="leak_driven", onset=1.5, fair=1.5 + 2 / 60)
    _leak_label(sc, "i0", sick=True, signal="heap_live", onset=0, fair=1.4)
    return sc


def storm_across_restart() -> Scenario:
    sc = _new("storm-across-restart", 1.5, "An allocation storm that goes on after the process is restarted at "
              "1:00; the new process warms its heap up from 10 MiB in 90 s, which is not a leak.")
    rng = _rng(sc.name)
    boot2 = at(1.0)
    a = 40 / 60
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", T0, boot2, rng=rng, live_mb=_flat(180), goal_ratio=_flat(2.0),
                                       period_s=lambda h: 0.2 if h >= a else 15.0,
                                       cpu_ms=lambda h: 250.0 if h >= a else 8.0))
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", boot2 + timedelta(seconds=1), at(1.5), rng=rng,
                                       live_mb=lambda h: 10 + min(170.0, 170 * h * 60 / 1.5), goal_ratio=_flat(2.0),
                                       period_s=_flat(0.2), cpu_ms=_flat(250), process_start=boot2))
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", at(1.5), sc.end, rng=rng, live_mb=_flat(180),
                                       goal_ratio=_flat(2.0), period_s=_flat(15), cpu_ms=_flat(8),
                                       process_start=boot2, first_gc=9000))
    _gc_label(sc, "i0", kind="allocation", onset=a, fair=a + 2 / 60)
    return sc


def gc_busy_healthy() -> Scenario:
    sc = _new("gc-busy-healthy", 1.5, "A busy service collecting every 2 s at about 6 % GC CPU: busy, not a storm.")
    rng = _rng(sc.name)
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", T0, sc.end, rng=rng, live_mb=_flat(900), goal_ratio=_flat(2.0),
                                       period_s=_flat(2.0), cpu_ms=_flat(450)))
    _gc_label(sc, "i0")
    _leak_label(sc, "i0", signal="heap_live")
    return sc


def gc_startup_bursts() -> Scenario:
    sc = _new("gc-startup-bursts", 1.5, "Restarted every 30 minutes; each start collects 20 times in 2 seconds "
              "while the heap grows to size, then settles.")
    rng = _rng(sc.name)
    for k in range(3):
        boot = at(k / 2)
        sc.add_rows("gc_events", gc_cycles(sc.name, "i0", boot, boot + timedelta(seconds=2), rng=rng,
                                           live_mb=lambda h: 4 + 2000 * h, goal_ratio=_flat(2.0),
                                           period_s=_flat(0.1), cpu_ms=_flat(3), process_start=boot))
        sc.add_rows("gc_events", gc_cycles(sc.name, "i0", boot + timedelta(seconds=2), at(k / 2 + 0.5), rng=rng,
                                           live_mb=_flat(60), goal_ratio=_flat(2.0), period_s=_flat(20),
                                           cpu_ms=_flat(5), process_start=boot, first_gc=21))
    _gc_label(sc, "i0")
    _leak_label(sc, "i0", signal="heap_live")
    return sc


def gc_hot_minute() -> Scenario:
    sc = _new("gc-hot-minute", 1.5, "A batch job makes GC hot for 80 seconds every hour: too short to be a storm.")
    rng = _rng(sc.name)
    def hot(h: float) -> bool:
        return (h * 3600) % 3600 >= 3600 - 80
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", T0, sc.end, rng=rng, live_mb=_flat(250), goal_ratio=_flat(2.0),
                                       period_s=lambda h: 0.2 if hot(h) else 12.0,
                                       cpu_ms=lambda h: 250.0 if hot(h) else 6.0))
    _gc_label(sc, "i0")
    return sc


def gc_limit_headroom() -> Scenario:
    sc = _new("gc-limit-headroom", 1.5, "GOMEMLIMIT=2GiB far above a 300 MiB heap; GC paced by GOGC, calm.")
    rng = _rng(sc.name)
    sc.add_rows("gc_events", gc_cycles(sc.name, "i0", T0, sc.end, rng=rng, live_mb=_flat(300), goal_ratio=_flat(2.0),
                                       period_s=_flat(10), cpu_ms=_flat(12)))
    sc.add_rows("runtime_metrics", gauge(sc.name, "i0", "go.memory.limit", 2048 * MIB, T0, sc.end))
    sc.add_rows("runtime_metrics", gauge(sc.name, "i0", "go.config.gogc", 100, T0, sc.end))
    _gc_label(sc, "i0")
    return sc


# -- cancellation ---------------------------------------------------------------------------------------
def _cancel(name: str, description: str, child_behaviour: str, *, minutes: int = 15) -> Scenario:
    """Requests to `<name>` (GET /search) calling `<name>-db` (Query): 20 per minute, every 5th timed out by
    the caller. `child_behaviour`: ignores (keeps running 400 ms after), prompt (stops within 5 ms), none (no
    cancellations), rare (one child in a 100 ignores it), doomed (async work started after the response)."""
    sc = _new(name, minutes / 60, description)
    rng = _rng(name)
    w = SpanWriter(rng)
    api, db = name, f"{name}-db"
    for k in range(minutes * 20):
        t0 = T0 + timedelta(seconds=3 * k + rng.uniform(0, 1))
        trace = w.new_id(128)
        cancelled = child_behaviour != "none" and k % 5 == 0
        root_ms = 100.0 if cancelled else rng.uniform(20, 60)
        root = w.span(trace, "", api, "GET /search", "Server", t0, root_ms,
                      rpc="DEADLINE_EXCEEDED" if cancelled else "")
        child_start = t0 + timedelta(milliseconds=5)
        if cancelled:
            rare_hit = child_behaviour == "rare" and k % 100 == 0
            overrun = 400.0 if child_behaviour == "ignores" or rare_hit else 3.0
            child = w.span(trace, root, db, "Query", "Client", child_start, root_ms - 5 + overrun)
            if child_behaviour in ("prompt", "rare") and overrun < 50:
                w.cancel(trace, child, db, t0 + timedelta(milliseconds=root_ms + 1), "parent_cancelled")
        else:
            w.span(trace, root, db, "Query", "Client", child_start, root_ms - 10)
        if child_behaviour == "doomed" and k % 4 == 0:
            w.span(trace, root, db, "Audit", "Internal", t0 + timedelta(milliseconds=root_ms + 300), 80)
    sc.add_rows("otel_traces", w.spans)
    if w.cancels["service"]:
        sc.add_rows("cancel_events", w.cancels)
    return sc


def _edge(sc: Scenario, child_op: str, *, sick: bool) -> None:
    sc.labels.append(Label(detection="cancel_gaps", service=f"{sc.name}-db", parent_service=sc.name,
                           parent_operation="GET /search", child_operation=child_op, sick=sick,
                           onset=T0 if sick else None, fair_from=T0 if sick else None))


def cancel_ignored() -> Scenario:
    sc = _cancel("cancel-ignored", "The database client keeps querying 400 ms after its caller timed out.",
                 "ignores")
    _edge(sc, "Query", sick=True)
    return sc


def cancel_doomed() -> Scenario:
    sc = _cancel("cancel-doomed", "Audit writes start after the request already answered: work nobody waits "
                 "for. The query itself stops promptly.", "doomed")
    _edge(sc, "Audit", sick=True)
    _edge(sc, "Query", sick=False)
    return sc


def cancel_prompt() -> Scenario:
    sc = _cancel("cancel-prompt", "Timeouts propagate: the query stops within 5 ms and reports "
                 "parent_cancelled.", "prompt")
    _edge(sc, "Query", sick=False)
    return sc


def cancel_none() -> Scenario:
    sc = _cancel("cancel-none", "Requests that all complete: nothing is cancelled.", "none")
    _edge(sc, "Query", sick=False)
    return sc


def cancel_rare() -> Scenario:
    sc = _cancel("cancel-rare", "One cancelled query in twenty overruns (one every 5 minutes): below the "
                 "two-overruns-per-bucket bar.", "rare", minutes=20)
    _edge(sc, "Query", sick=False)
    return sc


GENERATORS: tuple[Callable[[], Scenario], ...] = (
    flat_noisy, periodic_load, diurnal_load, deploy_step, autoscaling, gaps, late_data, restarts_healthy,
    fast_leak, slow_leak_day, sawtooth_leak, leak_under_diurnal, heap_leak, heap_flat,
    storm_allocation, storm_limit_squeeze, storm_misconfiguration, storm_leak_driven, storm_across_restart,
    gc_busy_healthy, gc_startup_bursts, gc_hot_minute, gc_limit_headroom,
    cancel_ignored, cancel_doomed, cancel_prompt, cancel_none, cancel_rare,
)


def generated() -> list[Scenario]:
    """Every generated scenario, built afresh (deterministic)."""
    return [make() for make in GENERATORS]
