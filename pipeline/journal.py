"""A write-ahead journal for the OTLP receivers' plain gc lines: on disk before the request is answered, in
gc_events by the engine afterwards, in large statements.

Why: an engine statement has a fixed cost of 30-45 ms of CPU (parsing, analysing and planning the gc statement;
docs/benchmarks.md, "OTLP: the journal"), whatever its size. A receiver answers a request only once its rows are
safe, and exporters wait for that answer, so the writer's inserts can only be as large as what the exporters have
in flight: 16 exporters of 1,000 records made inserts of 7-8k rows, and the fixed cost alone came to 5-6 us per
record, most of what two cores can spend on one at 300k records/s. The journal separates the two: a write appends
the rows to a segment file and syncs it (a few ms), and the requests are answered; a converter thread stores
whole segments (up to `segment_lines` lines, or what `segment_seconds` gathered) with one statement each, so the
fixed cost is paid once per 100k-500k lines. This is the Collector's persistent queue (file_storage) in front of
its exporter, kept to what Fleetwatch needs.

A segment is the statement's input itself (RowBinary rows of `GC_LINES_TABLE`, made by the writer), so the
embedded engine reads the file in place. Its life: `<name>.open` while appended to, `<name>.ready` once closed,
deleted once stored. Its rows carry `<name>` as their witness (`ingest_batch`), so a segment found on disk at
start (the process died before deleting it) is checked by witness before it is stored (pipeline/witness.py): stored
once, whether its insert had landed, had not, or was cut short. An `.open` segment found at start is cut back to its
last whole row first: the rest was an append whose sync never returned, so no client was told it was stored.

Limits: appends are refused with `JournalFull` (a `StoreUnavailable`: the receivers answer 503 / UNAVAILABLE and
exporters retry) while `max_bytes` wait to be stored, so a store that is away or slow costs disk, bounded, and
never memory. A segment the store refuses for good (the engine and the Python normalizer's insert both rejected) is
renamed `<name>.refused` and kept for the operator, never deleted. Rows reach gc_events about `segment_seconds`
after they were answered: detection runs on closed minutes, so this costs no finding.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from pipeline.store.client import StoreUnavailable
from pipeline.telemetry import Telemetry, get_telemetry

log = logging.getLogger(__name__)

WITNESS_PREFIX: Final = "otlp-journal/"
_OPEN, _READY, _REFUSED = ".open", ".ready", ".refused"


class JournalFull(StoreUnavailable):
    """Too many bytes wait to be stored; the same request may succeed later."""


class SegmentStore(Protocol):
    """Stores one segment: `(path, lines, witness, replay)` -> lines stored. `replay` is True for a segment
    found on disk at start, which must be checked by witness first. Raises `StoreUnavailable` to be retried."""

    def __call__(self, path: Path, lines: int, witness: str, replay: bool) -> int: ...


# The whole rows of a segment's bytes: (lines in them, bytes they take), for a segment cut by a crash.
WholeRows = Callable[[bytes], tuple[int, int]]


@dataclass
class _Segment:
    name: str
    path: Path
    lines: int = 0
    size: int = 0
    opened_at: float = 0.0
    appended_at: float = 0.0
    replay: bool = False


class GcLinesJournal:
    """Appends (the writer thread), and converter threads that store closed segments, oldest first."""

    def __init__(self, directory: Path, store_segment: SegmentStore, whole_rows: WholeRows, *,
                 segment_lines: int = 200_000, segment_seconds: float = 0.5, max_bytes: int = 1 << 30,
                 idle_seconds: float = 0.05, fsync: bool = True, converters: int = 2,
                 telemetry: Telemetry | None = None) -> None:
        self.directory = directory
        self.store_segment = store_segment
        self.whole_rows = whole_rows
        self.segment_lines = segment_lines
        self.segment_seconds = segment_seconds
        self.idle_seconds = idle_seconds
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.telemetry = telemetry or get_telemetry()
        self._lock = threading.Condition()
        self._open: _Segment | None = None
        self._fd = -1
        self._ready: deque[_Segment] = deque()
        self._backlog = 0  # bytes appended and not yet stored (open and ready segments)
        self._lines_waiting = 0
        self._stopping = False
        self._stopped = threading.Event()
        self._sequence = 0
        self._incarnation = f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:8]}"
        self._lock_fd = -1
        # Segments are independent (the statement carries nothing from line to line), so several are stored at
        # once: one statement reads its file on one thread, and a second keeps the other core busy.
        self._threads = [threading.Thread(target=self._run, name="fleetwatch-journal", daemon=True)
                         for _ in range(max(1, converters))]
        self.stored_segments = 0  # segments stored since start (tests and health wait on it)

    # -- state -----------------------------------------------------------------------------------------------
    @property
    def backlog_bytes(self) -> int:
        return self._backlog

    @property
    def lines_waiting(self) -> int:
        """Lines appended (answered) and not yet stored in gc_events."""
        return self._lines_waiting

    def start(self) -> GcLinesJournal:
        """Take the directory (one process at a time), queue the segments an earlier process left, start."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(f"the OTLP journal {self.directory} is used by another process; give each process "
                               "its own (otlp.journal_dir)") from None
        self._recover()
        for thread in self._threads:
            thread.start()
        return self

    def _recover(self) -> None:
        for path in sorted(self.directory.iterdir()):
            if path.suffix == _OPEN:
                data = path.read_bytes()
                lines, end = self.whole_rows(data)
                if end < len(data):
                    log.warning("journal: %s ends in an append cut short; its last %d bytes were never answered "
                                "and are dropped", path.name, len(data) - end)
                    with open(path, "r+b") as f:
                        f.truncate(end)
                        os.fsync(f.fileno())
                ready = path.with_suffix(_READY)
                path.rename(ready)
                path = ready
            elif path.suffix == _READY:
                lines, _ = self.whole_rows(path.read_bytes())
            else:
                continue
            size = path.stat().st_size
            if not lines:
                path.unlink()
                continue
            self._ready.append(_Segment(path.stem, path, lines, size, replay=True))
            self._backlog += size
            self._lines_waiting += lines
            self.telemetry.journal_lines.add(lines)
        if self._ready:
            log.info("journal: %d segments (%d lines) left by an earlier process are stored first",
                     len(self._ready), self._lines_waiting)

    # -- appending (the writer thread) ----------------------------------------------------------------------
    def append(self, data: bytes, lines: int) -> None:
        """Append whole rows; on return they are on disk (synced). Raises `JournalFull` past `max_bytes`."""
        if not data:
            return
        with self._lock:
            if self._stopping:
                raise StoreUnavailable("the OTLP journal is closing; retry later")
            if self._backlog and self._backlog + len(data) > self.max_bytes:
                raise JournalFull(f"{self._backlog} bytes of gc lines wait to be stored (limit {self.max_bytes}); "
                                  "retry later")
            try:
                segment = self._open or self._new_segment()
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fdatasync(self._fd)
            except OSError as exc:  # a full or failing disk: nothing of this append is kept, the exporter retries
                self._abandon_append()
                raise StoreUnavailable(f"the OTLP journal cannot write ({exc.strerror or exc}); retry later") from exc
            segment.lines += lines
            segment.size += len(data)
            segment.appended_at = time.monotonic()
            self._backlog += len(data)
            self._lines_waiting += lines
            self.telemetry.journal_lines.add(lines)
            if segment.lines >= self.segment_lines:
                self._close_open()
            self._lock.notify_all()

    def _new_segment(self) -> _Segment:
        self._sequence += 1
        name = f"{self._incarnation}-{self._sequence:06d}"
        path = self.directory / f"{name}{_OPEN}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._open = _Segment(name, path, opened_at=time.monotonic())
        if self.fsync:  # the new name must survive a crash before any answered row is in it
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return self._open

    def _abandon_append(self) -> None:
        """After a failed append: cut the open segment back to its whole rows and close it, so the next append
        starts a new file and no answered row sits behind part of one that was not (the lock is held)."""
        segment = self._open
        if segment is None:
            return
        try:
            os.ftruncate(self._fd, segment.size)
        except OSError:
            log.warning("journal: %s could not be cut back after a failed append; its last row is read as cut short",
                        segment.name)
        if segment.lines:
            self._close_open()
            return
        os.close(self._fd)
        self._fd = -1
        self._open = None
        segment.path.unlink(missing_ok=True)

    def _close_open(self) -> None:
        """Close the open segment and queue it (the lock is held)."""
        segment = self._open
        if segment is None:
            return
        os.close(self._fd)
        self._fd = -1
        self._open = None
        ready = segment.path.with_suffix(_READY)
        segment.path.rename(ready)
        segment.path = ready
        self._ready.append(segment)

    # -- storing (the converter thread) ---------------------------------------------------------------------
    def _next(self) -> _Segment | None:
        """The oldest closed segment, taken off the queue (a converter's own); None once stopped with nothing left.
        The open segment is closed once it is `segment_seconds` old, or once no append came for `idle_seconds`
        (the exporters stopped: what they sent is stored now, not half a second later; under load appends come
        far more often, so segments keep their size)."""
        with self._lock:
            while True:
                segment = self._open
                if segment is not None:
                    now = time.monotonic()
                    due = min(segment.opened_at + self.segment_seconds, segment.appended_at + self.idle_seconds)
                    if self._stopping or now >= due:
                        self._close_open()
                if self._ready:
                    return self._ready.popleft()
                if self._stopping:
                    return None
                if self._open is not None:
                    self._lock.wait(max(due - now, 0.001))
                else:
                    self._lock.wait()

    def _run(self) -> None:
        backoff = 0.5
        while True:
            segment = self._next()
            if segment is None:
                return
            witness = WITNESS_PREFIX + segment.name
            try:
                self.store_segment(segment.path, segment.lines, witness, segment.replay)
            except StoreUnavailable as exc:
                # The insert may have landed before the store went away (a server that cut the connection after
                # committing): the next attempt counts by witness first, as a segment found at start does.
                segment.replay = True
                with self._lock:
                    self._ready.appendleft(segment)  # first again, for whichever converter is free
                    if self._stopping:
                        return  # kept on disk: stored at the next start
                log.warning("journal: the store is unavailable (%s); %s is stored in %.1f s",
                            str(exc).splitlines()[0][:200], segment.name, backoff)
                self._stopped.wait(backoff)  # not the lock's wait: every append would cut it short
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception:
                log.exception("journal: the store refused %s for good; kept as %s%s", segment.name, segment.name,
                              _REFUSED)
                segment.path.rename(segment.path.with_suffix(_REFUSED))
                self.telemetry.insert_errors.add(1, {"table": "gc_events", "kind": "journal_refused"})
            else:
                segment.path.unlink()
                self.telemetry.rows_written.add(segment.lines, {"table": "gc_events"})
            backoff = 0.5
            with self._lock:
                self._backlog -= segment.size
                self._lines_waiting -= segment.lines
                self.telemetry.journal_lines.add(-segment.lines)
                self.stored_segments += 1
                self._lock.notify_all()

    def wait_stored(self, timeout: float) -> bool:
        """Wait until every appended line is stored (or `timeout`); True if none waits."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._lines_waiting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def stop(self, timeout: float) -> None:
        """Close the open segment and store what waits, within `timeout`; what is left stays on disk and is
        stored at the next start."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._stopped.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        alive = any(thread.is_alive() for thread in self._threads)
        if alive:
            log.warning("journal: %d lines not stored within the shutdown time stay on disk for the next start",
                        self._lines_waiting)
        with self._lock:
            self._close_open()
        if self._lock_fd >= 0 and not alive:
            os.close(self._lock_fd)
            self._lock_fd = -1
