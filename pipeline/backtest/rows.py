"""Row builders for generated scenarios: the columns the normalizers write for gctrace cycles, runtime
metrics and spans, so a generated scenario is indistinguishable from ingested data to the jobs.

Pure: every value comes from the arguments (times, a seeded `random.Random`); nothing reads a clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from pipeline.backtest.scenario import Columns

Curve = Callable[[float], float]   # hours since the series start -> value


def goroutine_series(service: str, instance: str, start: datetime, end: datetime, curve: Curve, *,
                     rng: random.Random, noise: float = 0.02, step_s: int = 60, process_start: datetime | None = None,
                     delay_s: float = 2.0, late: Callable[[datetime], float] | None = None,
                     skip: Callable[[datetime], bool] | None = None, spikes: float = 0.0) -> Columns:
    """go.goroutine.count once per `step_s`, multiplicative noise, optional spikes, gaps and late arrival."""
    cols: Columns = {k: [] for k in ("service", "instance", "ts", "metric", "value", "unit", "source_name",
                                     "attributes", "process_start", "received_at")}
    t = start
    while t < end:
        if skip is None or not skip(t):
            hours = (t - start).total_seconds() / 3600
            value = curve(hours) * (1 + rng.gauss(0, noise))
            if spikes and rng.random() < spikes:
                value *= rng.uniform(1.5, 3.0)
            arrival = delay_s + (late(t) if late is not None else 0.0)
            cols["service"].append(service)
            cols["instance"].append(instance)
            cols["ts"].append(t)
            cols["metric"].append("go.goroutine.count")
            cols["value"].append(float(max(1, round(value))))
            cols["unit"].append("{goroutine}")
            cols["source_name"].append("go.goroutine.count")
            cols["attributes"].append({})
            cols["process_start"].append(process_start or start)
            cols["received_at"].append(t + timedelta(seconds=arrival))
        t += timedelta(seconds=step_s)
    return cols


def gauge(service: str, instance: str, metric: str, value: float, start: datetime, end: datetime, *,
          step_s: int = 60) -> Columns:
    """A constant runtime gauge (go.memory.limit, go.config.gogc) every `step_s`."""
    times = []
    t = start
    while t < end:
        times.append(t)
        t += timedelta(seconds=step_s)
    n = len(times)
    return {"service": [service] * n, "instance": [instance] * n, "ts": times, "metric": [metric] * n,
            "value": [float(value)] * n, "unit": ["By" if metric == "go.memory.limit" else "%"] * n,
            "source_name": [metric] * n, "attributes": [{} for _ in range(n)], "process_start": [start] * n,
            "received_at": [x + timedelta(seconds=2) for x in times]}


def gc_cycles(service: str, instance: str, start: datetime, end: datetime, *, rng: random.Random,
              period_s: Curve, live_mb: Curve, goal_ratio: Curve, cpu_ms: Curve, assist_share: float = 0.3,
              procs: int = 4, process_start: datetime | None = None, first_gc: int = 1) -> Columns:
    """gctrace cycles from `start` to `end`: the gap between cycles, live heap, goal / live and GC CPU per
    cycle are curves of hours since `start`; the process started at `process_start` (default: `start`)."""
    boot = process_start or start
    cols: Columns = {k: [] for k in (
        "service", "instance", "ts", "gc_num", "since_start_s", "gc_cpu_pct", "stw_sweep_term_ms", "mark_ms",
        "stw_mark_term_ms", "cpu_sweep_term_ms", "cpu_assist_ms", "cpu_background_ms", "cpu_idle_ms",
        "cpu_mark_term_ms", "heap_start_mb", "heap_end_mb", "heap_live_mb", "heap_goal_mb", "stacks_mb",
        "globals_mb", "procs", "forced", "leak_check", "process_start", "incarnation", "format", "source",
        "received_at")}
    t = start
    num = first_gc
    while t < end:
        h = (t - start).total_seconds() / 3600
        live = max(1.0, live_mb(h) * (1 + rng.gauss(0, 0.02)))
        goal = max(live + 1, live * goal_ratio(h))
        cpu = max(0.05, cpu_ms(h) * (1 + rng.gauss(0, 0.1)))
        since = (t - boot).total_seconds()
        cols["service"].append(service)
        cols["instance"].append(instance)
        cols["ts"].append(t)
        cols["gc_num"].append(num)
        cols["since_start_s"].append(since)
        cols["gc_cpu_pct"].append(min(100, int(100 * cpu / max(1.0, 1000 * max(since, 1) * procs) + 0.5)))
        cols["stw_sweep_term_ms"].append(round(rng.uniform(0.01, 0.08), 3))
        cols["mark_ms"].append(round(cpu / procs, 3))
        cols["stw_mark_term_ms"].append(round(rng.uniform(0.02, 0.15), 3))
        cols["cpu_sweep_term_ms"].append(0.05)
        cols["cpu_assist_ms"].append(round(cpu * assist_share, 3))
        cols["cpu_background_ms"].append(round(cpu * (1 - assist_share), 3))
        cols["cpu_idle_ms"].append(round(cpu * 0.2, 3))
        cols["cpu_mark_term_ms"].append(0.1)
        cols["heap_start_mb"].append(int(goal))
        cols["heap_end_mb"].append(int(goal * 1.02))
        cols["heap_live_mb"].append(int(live))
        cols["heap_goal_mb"].append(int(goal))
        cols["stacks_mb"].append(1)
        cols["globals_mb"].append(0)
        cols["procs"].append(procs)
        cols["forced"].append(0)
        cols["leak_check"].append(0)
        cols["process_start"].append(boot)
        cols["incarnation"].append(0)
        cols["format"].append("go1.18")
        cols["source"].append("file")
        cols["received_at"].append(t + timedelta(seconds=1))
        t += timedelta(seconds=max(0.01, period_s(h) * rng.uniform(0.8, 1.2)))
        num += 1
    return cols


SPAN_COLUMNS = ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName",
                "ServiceInstance", "SpanAttributes", "Duration", "StatusCode", "StatusMessage", "RpcStatusCode")


class SpanWriter:
    """otel_traces and cancel_events rows, with ids drawn from the scenario's seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.spans: Columns = {c: [] for c in SPAN_COLUMNS}
        self.cancels: Columns = {c: [] for c in ("service", "instance", "trace_id", "span_id", "cancel_at",
                                                 "cause", "stack_depth", "operation", "attributes", "source",
                                                 "received_at")}

    def new_id(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def span(self, trace: str, parent: str, service: str, name: str, kind: str, start: datetime, dur_ms: float,
             *, rpc: str = "", message: str = "") -> str:
        sid = self.new_id(64)
        for col, value in zip(SPAN_COLUMNS, (
                start, trace, sid, parent, name, kind, service, f"{service}-0", {}, int(dur_ms * 1e6),
                "Error" if rpc else "Unset", message, rpc), strict=True):
            self.spans[col].append(value)
        return sid

    def cancel(self, trace: str, span: str, service: str, at: datetime, cause: str) -> None:
        for col, value in zip(self.cancels, (service, f"{service}-0", trace, span, at, cause, 12, "", {}, "file",
                                             at + timedelta(seconds=1)), strict=True):
            self.cancels[col].append(value)


def diurnal(low: float, high: float, peak_hour: float = 14.0, start_hour: float = 0.0) -> Curve:
    """A daily load cycle between `low` (night) and `high` (peak hour), hours counted from `start_hour`."""
    def curve(h: float) -> float:
        phase = 2 * math.pi * ((h + start_hour - peak_hour) / 24.0)
        return low + (high - low) * (1 + math.cos(phase)) / 2
    return curve
