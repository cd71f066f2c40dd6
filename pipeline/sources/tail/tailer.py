"""Follow log files: new data only, through rotation, exactly once into the store.

Each poll expands the configured globs and looks at every followed file:

* A file is followed by its inode, not its name. When the name comes to point at another inode (rename
  rotation: kubelet, logrotate's default) or disappears, the old inode is still read through its open
  descriptor until it has been idle for `idle_flush_seconds`; then what it ends with that is not a
  complete line yet (a CRI `P` record, a line without its newline) is carried into the first batch of
  the new file at the same name, so a line cut by the rotation is still one line.
* A file that shrinks below the checkpoint was truncated in place (copytruncate): its generation goes up
  and reading starts again at 0. The same happens when the first bytes no longer match the checkpoint's
  fingerprint (the inode was reused by another file).
* Complete lines are decoded (pipeline.normalize.container_logs: CRI, Docker json-file or plain) and the
  last REPAIR_WINDOW lines are held back while the file grows, so that a runtime line torn by
  application output meets its tail; once the file is idle they are processed too.
* Every batch follows the plan / rows / checkpoint protocol of `checkpoints.py`, so nothing is lost or
  stored twice across a crash.

A file that cannot be opened or read is reported once in quarantine (with the reason) and skipped; the
other files go on. Lines longer than `max_line_bytes` are cut there and quarantined.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.config import FilesSettings
from pipeline.normalize import runtime_lines as rl
from pipeline.normalize.container_logs import Entry, decode
from pipeline.normalize.gctrace import REPAIR_WINDOW, normalize_lines
from pipeline.normalize.logs import append_log
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources.tail.checkpoints import (
    FINGERPRINT_BYTES,
    CheckpointStore,
    Plan,
    batch_token,
    fingerprint,
    fingerprint_length,
)
from pipeline.sources.tail.identity import FileIdentity, identify
from pipeline.store.client import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

SOURCE = "file"
SIGNAL = "gctrace"
_HOLD_KINDS = (rl.BROKEN, rl.WEAK)


@dataclass
class Followed:
    """One followed file (one inode, one generation)."""

    path: str
    fd: int
    device: int
    inode: int
    identity: FileIdentity
    generation: int = 0
    offset: int = 0
    fingerprint: str = "0:0"
    size: int = 0
    last_growth: float = 0.0
    rotated: bool = False
    finished: bool = False
    plan: Plan | None = None                 # a plan found at the resume point: replay it first
    carry: bytes = b""                       # text carried from the rotated predecessor
    predecessor: Followed | None = None
    handed_over: Followed | None = None      # predecessor whose checkpoint is committed with our first batch
    node: str = ""

    @property
    def key(self) -> str:
        return f"{self.node}/{self.device}:{self.inode}:{self.generation}"


class Tailer:
    """Follows the files matched by `paths` (globs); `poll_once` does one round, `run` loops."""

    def __init__(
        self,
        sink: Sink,
        checkpoints: CheckpointStore,
        settings: FilesSettings,
        *,
        paths: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.sink = sink
        self.checkpoints = checkpoints
        self.settings = settings
        self.paths = list(paths if paths is not None else settings.paths)
        self.clock = clock
        self.wall_ns = wall_ns
        self.files: dict[tuple[int, int], Followed] = {}
        self.failed: dict[str, tuple[int, int]] = {}
        self._limit_reported = False
        self.lines = 0

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        backoff = self.settings.poll_interval_seconds
        while not stop.is_set():
            try:
                self.poll_once()
                backoff = self.settings.poll_interval_seconds
            except StoreUnavailable as exc:
                backoff = min(backoff * 2, 30.0)
                log.warning("store unavailable (%s); tailing retried in %.1f s", str(exc).splitlines()[0][:200],
                            backoff)
            stop.wait(backoff)

    def close(self) -> None:
        for f in self.files.values():
            _close(f)
        self.files.clear()

    def poll_once(self) -> None:
        """Discover files, notice rotations, and process whatever is new in each file."""
        seen = self._discover()
        by_path = {f.path: f for f in self.files.values() if not f.rotated}
        for f in by_path.values():
            if seen.get(f.path) != (f.device, f.inode):
                f.rotated = True
        for path, ident in seen.items():
            if ident in self.files or self.failed.get(path) == ident:
                continue
            predecessor = by_path.get(path)
            if predecessor is None:
                predecessor = self._rotated_while_away(path, ident)
            self._open(path, ident, predecessor if predecessor is not None and predecessor.rotated else None)
        for f in list(self.files.values()):
            try:
                while self._advance(f):
                    pass
            except StoreUnavailable:
                raise  # the store, not the file: the whole round is retried with a backoff
            except OSError as exc:
                self._fail(f.path, (f.device, f.inode), f"cannot read: {exc.strerror or exc}", f.identity)
                _close(f)
                del self.files[(f.device, f.inode)]
            except Exception as exc:  # one bad file never stops the others
                log.exception("%s: giving up on this file", f.path)
                self._fail(f.path, (f.device, f.inode), f"cannot process: {type(exc).__name__}: {exc}"[:500],
                           f.identity)
                _close(f)
                del self.files[(f.device, f.inode)]
            if f.finished:
                _close(f)
                self.files.pop((f.device, f.inode), None)

    def _discover(self) -> dict[str, tuple[int, int]]:
        seen: dict[str, tuple[int, int]] = {}
        for pattern in self.paths:
            for path in sorted(glob.glob(pattern)):
                if path in seen:
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                if len(seen) >= self.settings.max_files:
                    if not self._limit_reported:
                        log.warning("more than %d files match; the rest are not followed (files.max_files)",
                                    self.settings.max_files)
                        self._limit_reported = True
                    return seen
                seen[path] = (st.st_dev, st.st_ino)
        return seen

    def _rotated_while_away(self, path: str, ident: tuple[int, int]) -> Followed | None:
        """The file last read under `path`, when another file has its name now (rotated while this process
        was not running): found by its inode in the same directory and read to its end first."""
        last = self.checkpoints.last_at_path(path)
        if last is None or last == ident or last in self.files:
            return None
        directory = os.path.dirname(path) or "."
        try:
            candidates = list(os.scandir(directory))
        except OSError:
            return None
        for entry in candidates:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == last and stat.S_ISREG(st.st_mode):
                old = self._open(entry.path, last, None, name=path)
                if old is not None:
                    old.rotated = True
                return old
        return None

    def _open(
        self, path: str, ident: tuple[int, int], predecessor: Followed | None, *, name: str | None = None
    ) -> Followed | None:
        """Start following `path`; `name` is the path it had when it was followed before (identity and
        checkpoints keep that name)."""
        name = name or path
        identity = identify(name, service=self.settings.service, instance=self.settings.instance,
                            pattern=self.settings.identity_pattern)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self._fail(path, ident, f"cannot open: {exc.strerror or exc}", identity)
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != ident:  # replaced between stat and open: next poll sees the new one
            os.close(fd)
            return None
        f = Followed(path=name, fd=fd, device=st.st_dev, inode=st.st_ino, identity=identity,
                     last_growth=self.clock(), predecessor=predecessor, node=self.checkpoints.node)
        checkpoint = self.checkpoints.resume_point(f.device, f.inode)
        if checkpoint is not None:
            n = fingerprint_length(checkpoint.fingerprint)
            same = st.st_size >= checkpoint.offset and fingerprint(os.pread(fd, n, 0)) == checkpoint.fingerprint
            if same:
                f.generation, f.offset, f.fingerprint = checkpoint.generation, checkpoint.offset, checkpoint.fingerprint
            else:  # truncated or another file on a reused inode: a new generation, from the start
                f.generation = checkpoint.generation + 1
        f.plan = self.checkpoints.planned(f.key, f.offset)
        f.size = f.offset
        self.files[ident] = f
        self.failed.pop(path, None)
        log.info("following %s (%s at %d)", path, f.key, f.offset)
        return f

    # -- one file ----------------------------------------------------------------------------------
    def _advance(self, f: Followed) -> bool:
        """Process one batch of `f` if there is one; True when another batch may be ready right away."""
        if f.predecessor is not None and not f.predecessor.finished:
            return False
        size = os.fstat(f.fd).st_size
        now = self.clock()
        if size < f.offset:
            log.info("%s was truncated (%d < %d): reading it again from the start", f.path, size, f.offset)
            f.generation += 1
            f.offset = 0
            f.fingerprint = "0:0"
            f.plan = self.checkpoints.planned(f.key, 0)
        if size != f.size:
            f.size = size
            f.last_growth = now
        if f.plan is not None:
            self._replay(f, f.plan)
            return True
        idle = now - f.last_growth >= self.settings.idle_flush_seconds
        want = min(size - f.offset, self.settings.max_batch_bytes)
        data = os.pread(f.fd, want, f.offset) if want > 0 else b""
        buf = f.carry + data
        at_eof = f.offset + len(data) >= size
        final = f.rotated and idle and at_eof
        successor = self._successor(f) if final else None
        if not buf:
            if final:
                self._finish(f, successor, b"")
            return False
        max_line = self.settings.max_line_bytes
        if final and successor is None:
            # Rotated away, idle and nobody takes over its name: everything left is flushed as it is.
            raw, starts, ends = _raw_lines(buf, len(f.carry), f.offset, final=True, max_line=max_line)
            entries, cut = decode(raw, final=True)
        else:
            raw, starts, ends = _raw_lines(buf, len(f.carry), f.offset, final=False, max_line=max_line)
            entries, consumed = decode(raw, final=False)
            cut = consumed if idle else _hold_back(entries, consumed)
        cut_byte = ends[cut - 1] if cut > 0 else f.offset
        start = f.offset
        rest = buf
        if cut_byte > start:
            plan = self.checkpoints.claim(f.key, f.path, start, Plan(cut_byte, f.carry, self.wall_ns()))
            if plan.end != cut_byte or plan.carry != f.carry:
                f.plan = plan  # another plan stands for this start: replay it instead
                return True
            self._write(f, plan, [e for e in entries if e.last < cut], starts)
            rest = data[cut_byte - start:]
        if final:
            self._finish(f, successor, rest)
            return False
        return cut_byte > start and f.offset < size

    def _replay(self, f: Followed, plan: Plan) -> None:
        """Write the batch a plan found at the resume point describes, exactly as it was first read."""
        length = plan.end - f.offset
        data = os.pread(f.fd, length, f.offset)
        if len(data) != length:
            raise OSError(f"file shorter than its batch plan ({f.offset + len(data)} < {plan.end})")
        raw, starts, _ = _raw_lines(plan.carry + data, len(plan.carry), f.offset, final=True,
                                    max_line=self.settings.max_line_bytes)
        entries, _ = decode(raw, final=True)
        self._write(f, plan, entries, starts)

    def _successor(self, f: Followed) -> Followed | None:
        for other in self.files.values():
            if other.predecessor is f:
                return other
        return None

    def _finish(self, f: Followed, successor: Followed | None, rest: bytes) -> None:
        """A rotated file is done: its unfinished tail goes to the file that took over its name."""
        if successor is not None:
            successor.carry = rest
            successor.handed_over = f
        f.finished = True

    def _write(self, f: Followed, plan: Plan, entries: list[Entry], starts: list[int]) -> None:
        """Normalize and store one planned batch, then move the checkpoint to its end."""
        start = f.offset
        read_at = datetime.fromtimestamp(plan.read_at_ns / 1e9, UTC)
        rows = self._rows(f, entries, starts, plan.read_at_ns, read_at)
        if f.handed_over is not None:
            # The predecessor's unfinished tail is in this batch's plan now: its own file is done.
            old = f.handed_over
            self.checkpoints.commit(device=old.device, inode=old.inode, generation=old.generation,
                                    offset=old.size, fingerprint=old.fingerprint, path=old.path)
        token = batch_token(f.key, start)
        try:
            self.sink.write(rows, token=token)
        except StoreError as exc:
            log.warning("store rejected batch %s (%s); its lines are quarantined", token, exc)
            reject = Rows()
            for entry in entries:
                reject.quarantine(source=SOURCE, signal=SIGNAL, reason=f"store rejected the rows: {exc}"[:2000],
                                  raw=entry.text, service=f.identity.service, instance=f.identity.instance,
                                  location=f"{f.path}:{starts[entry.first]}", received_at=read_at)
            self.sink.write(reject, token=f"{token}/rejected")
        if start == 0 or f.fingerprint.startswith("0:") or fingerprint_length(f.fingerprint) < FINGERPRINT_BYTES:
            f.fingerprint = fingerprint(os.pread(f.fd, min(FINGERPRINT_BYTES, plan.end), 0))
        self.checkpoints.commit(device=f.device, inode=f.inode, generation=f.generation, offset=plan.end,
                                fingerprint=f.fingerprint, path=f.path)
        self.lines += len(entries)
        self.sink.telemetry.records_in.add(len(entries), {"source": SOURCE, "signal": SIGNAL})
        f.offset = plan.end
        f.carry = b""
        f.plan = None
        f.handed_over = None

    def _rows(self, f: Followed, entries: list[Entry], starts: list[int], read_at_ns: int, read_at: datetime) -> Rows:
        rows = Rows()
        identity = f.identity
        streams: dict[str, tuple[list[str], list[int], list[int]]] = {}
        for entry in sorted(entries, key=lambda e: e.first):
            if len(entry.text) >= self.settings.max_line_bytes:
                rows.quarantine(source=SOURCE, signal=SIGNAL, raw=entry.text, service=identity.service,
                                instance=identity.instance, location=f"{f.path}:{starts[entry.first]}",
                                reason=f"line longer than {self.settings.max_line_bytes} bytes (files.max_line_bytes)",
                                received_at=read_at)
                continue
            lines, times, where = streams.setdefault(entry.stream, ([], [], []))
            lines.append(entry.text)
            times.append(entry.time_ns if entry.time_ns is not None else read_at_ns)
            where.append(starts[entry.first])
        resource = {**identity.attributes, "log.file.path": f.path}
        for stream, (lines, times, where) in streams.items():
            log_attrs = {"log.iostream": stream} if stream else {}

            def on_log(rows_: Rows, i: int, body: str, _ts_us: int, times: list[int] = times,
                       log_attrs: dict[str, str] = log_attrs) -> None:
                append_log(rows_, timestamp_ns=times[i], service=identity.service, instance=identity.instance,
                           body=body, resource_attributes=resource, log_attributes=log_attrs)

            def where_at(i: int, where: list[int] = where) -> dict[str, Any]:
                return {"location": f"{f.path}:{where[i]}"}

            normalize_lines(lines, observed_ns=times, service=identity.service, instance=identity.instance,
                            source=SOURCE, received_at=read_at, rows=rows, on_log=on_log, where_at=where_at)
        return rows

    def _fail(self, path: str, ident: tuple[int, int], reason: str, identity: FileIdentity) -> None:
        """Report a file that cannot be read, once per inode, and leave the others alone."""
        log.warning("%s: %s", path, reason)
        self.failed[path] = ident
        rows = Rows()
        rows.quarantine(source=SOURCE, signal=SIGNAL, reason=reason, raw=b"", service=identity.service,
                        instance=identity.instance, location=path, received_at=datetime.now(UTC))
        try:
            self.sink.write(rows, token=f"tailfail/{ident[0]}:{ident[1]}/{reason}"[:500])
        except (StoreUnavailable, StoreError):
            log.warning("could not record the failure of %s", path)


def _close(f: Followed) -> None:
    try:
        os.close(f.fd)
    except OSError:
        pass


def _raw_lines(
    buf: bytes, carry_len: int, offset: int, *, final: bool, max_line: int
) -> tuple[list[str], list[int], list[int]]:
    """Complete lines of `buf` (carried bytes first, then file bytes from `offset`), with the file offsets
    where each starts and ends (after its newline; carried bytes count as `offset`). An unterminated last
    line is included only with `final`; a line longer than `max_line` is cut there."""
    lines: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    n = len(buf)
    base = offset - carry_len
    while pos < n:
        nl = buf.find(b"\n", pos, pos + max_line + 1)
        if nl < 0:
            if n - pos > max_line:
                end = pos + max_line
            elif final:
                end = n
            else:
                break
            lines.append(_text(buf[pos:end]))
            starts.append(max(offset, base + pos))
            ends.append(max(offset, base + end))
            pos = end
            continue
        lines.append(_text(buf[pos:nl]))
        starts.append(max(offset, base + pos))
        ends.append(max(offset, base + nl + 1))
        pos = nl + 1
    return lines, starts, ends


def _text(line: bytes) -> str:
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8", errors="backslashreplace")


def _hold_back(entries: list[Entry], consumed: int) -> int:
    """Where to cut while the file grows: before the last REPAIR_WINDOW lines, and before a line that may
    start a torn runtime line near the cut (so its tail, still to come, can complete it)."""
    if not entries:
        return consumed
    ordered = sorted(entries, key=lambda e: e.first)
    k = max(0, len(ordered) - REPAIR_WINDOW)
    floor = len(ordered) // 2
    while k > floor and any(rl.classify(e.text)[0] in _HOLD_KINDS for e in ordered[max(0, k - REPAIR_WINDOW):k]):
        k -= 1
    cut = ordered[k].first if k < len(ordered) else consumed
    # An entry that started before the cut but ends after it (interleaved partial records) waits too.
    while True:
        lower = min((e.first for e in ordered if e.first < cut <= e.last), default=cut)
        if lower >= cut:
            return min(cut, consumed)
        cut = lower
