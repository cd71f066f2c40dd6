"""Scoring a backtest: findings against labels, without a store (the scorer itself must be able to fail)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.backtest.library import generated
from pipeline.backtest.scenario import Label, Scenario, dump_toml
from pipeline.backtest.score import Flag, score

T = datetime(2026, 11, 2, tzinfo=UTC)


def _scenario() -> Scenario:
    sc = Scenario(name="s", start=T, end=T + timedelta(hours=4))
    sc.labels = [
        Label(detection="gc_storms", service="s", instance="hot", sick=True, kind="allocation",
              onset=T + timedelta(hours=1), fair_from=T + timedelta(hours=1, minutes=2)),
        Label(detection="gc_storms", service="s", instance="calm", sick=False),
        Label(detection="leak_trends", service="s", instance="i0", signal="goroutines", sick=False),
    ]
    return sc


def _flag(*subject: str, kind: str = "", minutes: int = 65) -> Flag:
    return Flag(tuple(subject), kind, (T + timedelta(minutes=minutes),))


def test_found_with_the_right_kind_and_time_to_detect() -> None:
    (out, leak) = score([_scenario()], [_flag("gc_storms", "s", "hot", kind="allocation")])
    assert (out.tp, out.fp, out.fn, out.passed) == (1, 0, 0, True)
    assert out.ttd == [timedelta(minutes=5)]
    assert leak.passed and leak.healthy == 1


def test_wrong_kind_early_flag_false_alarm_and_unlabelled_all_count() -> None:
    flags = [
        _flag("gc_storms", "s", "hot", kind="limit_squeeze"),          # wrong kind: FP, and a miss
        _flag("gc_storms", "s", "calm", kind="allocation"),           # healthy subject: FP
        _flag("leak_trends", "s", "i1", "goroutines"),                 # nobody labelled it: FP
    ]
    gc, leak = score([_scenario()], flags)
    assert (gc.tp, gc.fn) == (0, 1) and gc.fp == 2 and not gc.passed
    assert leak.fp == 1 and not leak.passed
    early = score([_scenario()], [_flag("gc_storms", "s", "hot", kind="allocation", minutes=61),
                                  _flag("gc_storms", "s", "hot", kind="allocation", minutes=70)])[0]
    assert early.fp == 1 and early.tp == 1  # an alarm before the evidence is there is a guess


def test_library_is_large_balanced_labelled_and_deterministic() -> None:
    library = generated()
    names = [sc.name for sc in library]
    assert len(library) >= 25 and len(set(names)) == len(names)
    healthy = [sc for sc in library if sc.healthy]
    assert len(healthy) >= len(library) - len(healthy)
    kinds = {lb.kind for sc in library for lb in sc.labels if lb.detection == "gc_storms" and lb.sick}
    assert kinds == {"allocation", "limit_squeeze", "leak_driven", "misconfiguration"}
    for sc in library:
        assert sc.labels, sc.name
        for label in sc.labels:
            if label.sick:
                assert label.onset is not None and label.fair_from is not None and label.fair_from >= label.onset
        assert {service.split("-db")[0] for service in sc.services()} == {sc.name}
    again = {sc.name: sc for sc in generated()}
    assert all(again[sc.name].tables == sc.tables for sc in library)
    assert 'name = "fast-leak"' in dump_toml(again["fast-leak"])
