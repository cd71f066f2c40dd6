"""Scoring: what the jobs wrote, compared with the scenarios' labels.

A subject (an instance for GC storms, an instance and signal for leak trends, a call edge for cancel gaps)
is *found* when the job flagged it at or after its label's `fair_from` (and after the scenario's
`evaluate_from`), with the labelled kind for GC storms. Any flag on a healthy subject, on a subject nobody
labelled, with the wrong kind, or before `fair_from` is a false positive; a sick subject never found is a
false negative. Time to detect is the first fair flag minus the onset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.backtest.scenario import DETECTIONS, Scenario, subject_key
from pipeline.config import Settings
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings


@dataclass(frozen=True)
class Flag:
    """One flagged (subject, kind) with the end of every window it was flagged in."""

    subject: tuple[str, ...]
    kind: str
    at: tuple[datetime, ...]

    def since(self, start: datetime) -> Flag | None:
        """The flags at or after `start`, or None when there are none."""
        kept = tuple(t for t in self.at if t >= start)
        return Flag(self.subject, self.kind, kept) if kept else None

    @property
    def first(self) -> datetime:
        return self.at[0]

    @property
    def last(self) -> datetime:
        return self.at[-1]


@dataclass
class Outcome:
    scenario: str
    detection: str
    sick: int = 0
    healthy: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ttd: list[timedelta] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.fp == 0 and self.fn == 0


def read_flags(store: Store, settings: Settings) -> list[Flag]:
    """Every flagged subject of every detection, from the jobs' output tables."""
    ctx = context_from_settings(settings)
    flags: list[Flag] = []
    for detection in DETECTIONS:
        sql = load_statement(settings.sql_dir, f"queries/backtest_{detection}.sql", ctx)
        result = store.query(sql)
        names = list(result.column_names)
        for values in result.result_rows:
            row = dict(zip(names, values, strict=True))
            subject = subject_key(detection, row["service"], row.get("instance", ""), row.get("signal", ""),
                                  row.get("parent_service", ""), row.get("parent_operation", ""),
                                  row.get("child_operation", ""))
            at = tuple(sorted(_utc(t) for t in row["flagged_at"]))
            if at:
                flags.append(Flag(subject, row.get("kind", "") or "", at))
    return flags


def score(scenarios: list[Scenario], flags: list[Flag]) -> list[Outcome]:
    """One Outcome per scenario and detection it labels or is flagged for."""
    owner: dict[str, Scenario] = {}
    for sc in scenarios:
        for service in sc.services():
            owner[service] = sc
    outcomes: dict[tuple[str, str], Outcome] = {}

    def outcome(sc: Scenario, detection: str) -> Outcome:
        return outcomes.setdefault((sc.name, detection), Outcome(sc.name, detection))

    by_subject: dict[tuple[str, ...], list[Flag]] = {}
    for flag in flags:
        by_subject.setdefault(flag.subject, []).append(flag)
    labelled: set[tuple[str, ...]] = set()
    for sc in scenarios:
        for label in sc.labels:
            key = label.subject()
            labelled.add(key)
            out = outcome(sc, label.detection)
            fair = max(filter(None, [label.fair_from, sc.scored_from]))
            seen = [g for g in (f.since(sc.scored_from) for f in by_subject.get(key, [])) if g is not None]
            early = [f for f in seen if f.first < fair and (not label.sick or f.kind == label.kind)]
            wrong = [f for f in seen if label.sick and label.detection == "gc_storms" and f.kind != label.kind]
            if label.sick:
                out.sick += 1
                right = [f for f in seen if f.last >= fair and (label.detection != "gc_storms" or f.kind == label.kind)]
                if right:
                    out.tp += 1
                    out.ttd.append(max(min(f.first for f in right), fair) - (label.onset or sc.start))
                else:
                    out.fn += 1
                    out.notes.append(f"missed {'/'.join(key[1:])}")
                if early:
                    out.fp += 1
                    out.notes.append(f"flagged before {fair:%Y-%m-%d %H:%M}: {'/'.join(key[1:])}")
                for f in wrong:
                    out.fp += 1
                    out.notes.append(f"wrong kind {f.kind} for {'/'.join(key[1:])}")
            else:
                out.healthy += 1
                if seen:
                    out.fp += 1
                    kinds = ",".join(sorted({f.kind for f in seen if f.kind}))
                    out.notes.append(f"false alarm {'/'.join(key[1:])} at {min(f.first for f in seen):%m-%d %H:%M}"
                                     + (f" ({kinds})" if kinds else ""))
    for key, subject_flags in by_subject.items():
        if key in labelled:
            continue
        service = key[3] if key[0] == "cancel_gaps" else key[1]
        sc = owner.get(service)
        if sc is None:
            continue
        if not any(f.since(sc.scored_from) for f in subject_flags):
            continue
        out = outcome(sc, key[0])
        out.fp += 1
        out.notes.append(f"unlabelled {'/'.join(key[1:])} flagged")
    order = {sc.name: i for i, sc in enumerate(scenarios)}
    return sorted(outcomes.values(), key=lambda o: (order.get(o.scenario, 0), DETECTIONS.index(o.detection)))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
