"""Profile rows shaped like the agreed profile tables, for detection tests that seed the store directly.

`ProfileSeed` writes one snapshot at a time into the migrated test database, the way the intake would: a
profile_snapshots row, its stacks and its per-stack samples, with exact counts the tests can check against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.store.client import Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Frame:
    function: str
    file: str
    line: int


@dataclass
class Site:
    """Goroutines at one blocking frame, created by one `go` statement."""

    frame: Frame
    created_by: Frame | None
    goroutines: int
    wait_reason: str = "chan receive"
    wait_minutes: int = 0
    leaked: int = 0


@dataclass
class Alloc:
    frame: Frame
    alloc_space: int
    alloc_objects: int


def stack_id(frames: list[Frame]) -> int:
    digest = hashlib.blake2b("|".join(f"{f.function}\0{f.file}\0{f.line}" for f in frames).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


@dataclass
class ProfileSeed:
    store: Store
    service: str = "svc"
    instance: str = "i-0"
    stacks: dict[int, list[Frame]] = field(default_factory=dict)

    def _snapshot(self, ts: datetime, profile_type: str, process_start: datetime, total: int) -> str:
        key = f"{self.service}/{self.instance}/{profile_type}/{ts.isoformat()}"
        snapshot_id = hashlib.sha1(key.encode()).hexdigest()
        self.store.insert_columns("profile_snapshots", {
            "service": [self.service], "instance": [self.instance], "ts": [ts], "snapshot_id": [snapshot_id],
            "profile_type": [profile_type], "source": ["file"], "format": ["pprof"], "total_goroutines": [total],
            "sample_period": [512 * 1024 if profile_type in ("allocs", "heap") else 0], "duration_ns": [0],
            "process_start": [process_start], "go_version": ["go1.27"], "stacks": [0], "bytes": [0],
            "received_at": [ts],
        })
        return snapshot_id

    def _stack(self, frames: list[Frame], ts: datetime) -> int:
        sid = stack_id(frames)
        if sid not in self.stacks:
            self.stacks[sid] = frames
            self.store.insert_columns("profile_stacks", {
                "stack_id": [sid], "functions": [[f.function for f in frames]], "files": [[f.file for f in frames]],
                "lines": [[f.line for f in frames]], "first_seen": [ts], "last_seen": [ts],
            })
        return sid

    def goroutines(self, ts: datetime, sites: list[Site], *, profile_type: str = "goroutine",
                   process_start: datetime = EPOCH) -> str:
        total = sum(s.goroutines for s in sites)
        snapshot_id = self._snapshot(ts, profile_type, process_start, total)
        rows = [s for s in sites if s.goroutines > 0]
        if not rows:
            return snapshot_id
        cols: dict[str, list] = {k: [] for k in (
            "service", "instance", "ts", "snapshot_id", "profile_type", "stack_id", "goroutines", "wait_reason",
            "wait_minutes", "site_function", "site_file", "site_line", "created_by_function", "created_by_file",
            "created_by_line", "leaked")}
        for s in rows:
            frames = [Frame("runtime.gopark", "runtime/proc.go", 435), s.frame]
            cb = s.created_by or Frame("", "", 0)
            values = {
                "service": self.service, "instance": self.instance, "ts": ts, "snapshot_id": snapshot_id,
                "profile_type": profile_type, "stack_id": self._stack(frames, ts), "goroutines": s.goroutines,
                "wait_reason": s.wait_reason, "wait_minutes": s.wait_minutes, "site_function": s.frame.function,
                "site_file": s.frame.file, "site_line": s.frame.line, "created_by_function": cb.function,
                "created_by_file": cb.file, "created_by_line": cb.line,
                "leaked": 1 if profile_type == "goroutineleak" else s.leaked,
            }
            for k, v in values.items():
                cols[k].append(v)
        self.store.insert_columns("goroutine_samples", cols)
        return snapshot_id

    def allocs(self, ts: datetime, allocs: list[Alloc], *, process_start: datetime = EPOCH,
               profile_type: str = "allocs") -> str:
        snapshot_id = self._snapshot(ts, profile_type, process_start, 0)
        cols: dict[str, list] = {k: [] for k in (
            "service", "instance", "ts", "snapshot_id", "profile_type", "stack_id", "alloc_objects", "alloc_space",
            "inuse_objects", "inuse_space", "site_function", "site_file", "site_line")}
        for a in allocs:
            frames = [Frame("runtime.mallocgc", "runtime/malloc.go", 1000), a.frame]
            values = {
                "service": self.service, "instance": self.instance, "ts": ts, "snapshot_id": snapshot_id,
                "profile_type": profile_type, "stack_id": self._stack(frames, ts),
                "alloc_objects": a.alloc_objects, "alloc_space": a.alloc_space, "inuse_objects": 0,
                "inuse_space": 0, "site_function": a.frame.function, "site_file": a.frame.file,
                "site_line": a.frame.line,
            }
            for k, v in values.items():
                cols[k].append(v)
        self.store.insert_columns("heap_samples", cols)
        return snapshot_id
