"""`fleetwatch ingest gctrace PATH... | -`: a process's stderr from files or stdin into the store.

Files may be plain or gzip (recognised by their magic bytes, not their name), and plain text or container
runtime logs: a file whose first line is a CRI record (`<time> stderr F <line>`) or a Docker json-file
record is read through `pipeline.normalize.container_logs` (partial records joined, stdout and stderr kept
apart, each line anchored on its record's own time unless --start-time is given). Lines are read in large
chunks, normalized in batches by one `GctraceStream` per input (so a line split by application output is
repaired even across a batch boundary) and written batch by batch, so memory stays flat for any file size.

Time anchoring (docs/schema.md, 'Timestamps'): with --start-time every cycle's ts is start + @seconds.
Without it a file is anchored on its modification time, taken as the end of its last GC cycle (a first,
cheap pass over the file measures the span); stdin is anchored on the wall clock when the first gc line of
each process incarnation is read, which is right for a live pipe (`app 2>&1 | fleetwatch ingest ...`).
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pipeline.config import Settings
from pipeline.normalize.container_logs import PLAIN, decode, detect_format
from pipeline.normalize.gctrace import GctraceStream, LineStats, stream_span_ns
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources.gctrace_fast import FastGctraceStream, GctraceFastPath, RawBatch, SpanUndecided, raw_lines
from pipeline.store.client import Store, StoreError, StoreUnavailable
from pipeline.store.migrate import MigrationError, context_from_settings, migrate

BATCH_LINES = 50_000
# Lines per batch on the fast path: each clean batch is one engine statement with a fixed cost of tens of
# milliseconds (docs/benchmarks.md), so batches are larger there; memory stays bounded by this size.
FAST_BATCH_LINES = 200_000
CHUNK_BYTES = 1 << 20
# Raw bytes per engine insert when the engine computes a file's span (about 50,000 gc lines).
SPAN_CHUNK_BYTES = 8 << 20
# Inputs ingested at the same time at most, whatever --jobs asks (each holds an engine connection and a batch).
MAX_JOBS = 16
# A live pipe writes little at a time: flush at least this often so rows show up while it runs.
STDIN_FLUSH_SECONDS = 1.0
_GZIP_MAGIC = b"\x1f\x8b"


def default_jobs() -> int:
    """Inputs ingested at once when --jobs is not given: one per core this process may run on (its CPU affinity,
    which a container's cpuset narrows), since a clean batch is one engine statement on one core; at most
    MAX_JOBS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_JOBS))


class UsageError(Exception):
    """A bad argument: reported with exit code 2."""


@dataclass
class Input:
    name: str          # the path as given, or "-"
    instance: str


def parse_start_time(text: str) -> int:
    """ISO 8601 (a trailing Z and offsets allowed; no offset means UTC) -> unix ns."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--start-time {text!r} is not an ISO 8601 time (example: 2026-11-29T10:00:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


@contextmanager
def open_binary(name: str) -> Iterator[BinaryIO]:
    """The bytes of a file or of stdin, gunzipped when they start with the gzip magic."""
    with ExitStack() as stack:
        if name == "-":
            raw: io.BufferedReader = sys.stdin.buffer  # type: ignore[assignment]
        else:
            raw = stack.enter_context(open(name, "rb"))
        if raw.peek(2)[:2] == _GZIP_MAGIC:
            yield stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[misc]
        else:
            yield raw  # type: ignore[misc]


def iter_line_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[list[str]]:
    """Complete lines (without terminators), a chunk at a time; a final unterminated line is included.

    `read1` returns what is available, so a live pipe yields its lines as they come. Bytes that are not
    UTF-8 are kept as backslash escapes.
    """
    for _, lines in iter_raw_line_chunks(stream, chunk_bytes):
        yield lines


def iter_raw_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of complete lines, a chunk at a time, each line ended by b"\\n"; a final unterminated line is
    the last chunk, as it is. No Python string per line: the gctrace fast path hands them to the engine.

    Each chunk is read into a buffer of its own behind the line left over from the read before, and its own
    unfinished last line is cut off in place, so a chunk's bytes are never copied in Python (joining the leftover
    to each read and slicing off the chunk copied every byte twice: 10-15 % of the reading's CPU, docs/benchmarks.md).
    Chunks of whole lines are bytearrays (nothing changes them after this); the leftover is bytes. `readinto1`
    returns what is available, so a live pipe yields its lines as they come."""
    pending = b""
    readinto = getattr(stream, "readinto1", None) or stream.readinto
    while True:
        held = len(pending)
        buf = bytearray(held + chunk_bytes)
        buf[:held] = pending
        with memoryview(buf) as view, view[held:] as free:
            got = readinto(free)
        if not got:
            break
        del buf[held + got:]  # a short read: shrink in place (no copy)
        cut = buf.rfind(b"\n")
        if cut < 0:
            pending = bytes(buf)
            continue
        pending = bytes(buf[cut + 1:])
        del buf[cut + 1:]
        yield buf
    if pending:
        yield pending


def iter_raw_line_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[bytes, list[str]]]:
    """As `iter_line_chunks`, with the bytes each chunk's lines came from, every line ended by b"\\n" (a final
    unterminated line gets one): the gctrace fast path stages them as they are. The lines are
    `gctrace_fast.raw_lines` of the bytes, so they do not depend on where a read ended."""
    for data in iter_raw_chunks(stream, chunk_bytes):
        if data.endswith(b"\n"):
            yield data, raw_lines(data)
        else:
            yield data + b"\n", raw_lines(data)


def file_format(path: str) -> str:
    """The layout of a file: container_logs.CRI, DOCKER or PLAIN (from its first line)."""
    with open_binary(path) as binary:
        return detect_format(next(iter_line_chunks(binary, 64 << 10), []))


def file_start_ns(path: str, fast: GctraceFastPath | None = None) -> int:
    """Start of the process that wrote `path`, assuming its last GC cycle ended at the file's mtime.

    With `fast` the span is computed by the engine from the raw bytes (no Python object per line); the Python
    pass, the reference, runs only when the engine finds a gc line it does not recognise."""
    mtime_ns = os.stat(path).st_mtime_ns
    if fast is not None:
        try:
            with open_binary(path) as stream:
                span = fast.span_ns(_joined(iter_raw_line_chunks(stream), SPAN_CHUNK_BYTES))
            return mtime_ns - (span or 0)
        except SpanUndecided:
            pass
    with open_binary(path) as stream:
        span = stream_span_ns(line for chunk in iter_line_chunks(stream) for line in chunk)
    return mtime_ns - (span or 0)


def _joined(chunks: Iterable[tuple[bytes, list[str]]], size: int) -> Iterator[bytes]:
    """The raw bytes of `chunks`, joined into pieces of about `size` bytes (fewer engine round trips)."""
    parts: list[bytes] = []
    held = 0
    for raw, _ in chunks:
        parts.append(raw)
        held += len(raw)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


def ingest_stream(
    store: Store,
    source: Input,
    *,
    service: str,
    start_ns: int | None,
    batch_lines: int = BATCH_LINES,
    fast: GctraceFastPath | None = None,
) -> LineStats:
    """Read one input to its end, writing every batch to the store; returns what became of its lines.

    With `fast` and a known start, runs of plain gc lines are parsed and stored by the engine
    (pipeline/sources/gctrace_fast.py); the rows are the same.
    """
    is_stdin = source.name == "-"
    reference = GctraceStream(
        service=service,
        instance=source.instance,
        source="stdin" if is_stdin else "file",
        received_at=datetime.now(UTC),
        start_ns=start_ns,
        now_ns=time.time_ns,
        name="stdin" if is_stdin else source.name,
    )
    stream: GctraceStream | FastGctraceStream = reference
    if fast is not None and start_ns is not None:
        stream = fast.stream(reference, service=service, instance=source.instance,
                             source="stdin" if is_stdin else "file")
    sink = Sink(store)
    if not is_stdin and file_format(source.name) != PLAIN:
        return _ingest_container_file(sink, source, service=service, start_ns=start_ns, batch_lines=batch_lines)
    if isinstance(stream, FastGctraceStream):
        try:
            _ingest_raw(sink, stream, source.name, batch_lines=max(batch_lines, FAST_BATCH_LINES))
        finally:
            stream.close()  # the stage table, also when the store failed mid-way
        sink.telemetry.records_in.add(stream.stats.lines,
                                      {"source": "stdin" if is_stdin else "file", "signal": "gctrace"})
        return stream.stats
    batch: list[str] = []
    raw: list[bytes] = []  # the batch's bytes, for the fast path's raw staging
    last_flush = time.monotonic()

    def flush(final: bool) -> None:
        rows = Rows()
        if batch:
            if isinstance(stream, FastGctraceStream):
                stream.feed(batch, rows, terminated=False, raw=b"".join(raw))
            else:
                stream.feed(batch, rows, terminated=False)
            batch.clear()
            raw.clear()
        if final:
            stream.finish(rows)
        if rows:
            sink.write(rows)

    try:
        with open_binary(source.name) as binary:
            for chunk_bytes, chunk in iter_raw_line_chunks(binary):
                batch.extend(chunk)
                raw.append(chunk_bytes)
                now = time.monotonic()
                if len(batch) >= batch_lines or (is_stdin and now - last_flush >= STDIN_FLUSH_SECONDS):
                    flush(final=False)
                    last_flush = now
        flush(final=True)
    finally:
        if isinstance(stream, FastGctraceStream):
            stream.close()  # the stage table, also when the store failed mid-way
    sink.telemetry.records_in.add(stream.stats.lines, {"source": "stdin" if is_stdin else "file", "signal": "gctrace"})
    return stream.stats


def _ingest_raw(sink: Sink, stream: FastGctraceStream, name: str, *, batch_lines: int) -> None:
    """A plain file or stdin through the fast path, batch by batch as bytes: a clean batch never becomes
    Python strings (`FastGctraceStream.feed_raw`), and its chunks are counted once, as they are read, and
    never joined. A full batch of a file waits for the next bytes before it is written, so a file's last
    batch is always written as its final one (held-back lines included: no statement for two lines).

    A plain regular file of at most one batch is first offered to the embedded engine whole
    (`FastGctraceStream.feed_file`): when it is clean, the engine counts and stores it reading the file in place,
    and Python never reads it; otherwise it is read here as below."""
    is_stdin = name == "-"
    if not is_stdin and _plain_regular_file(name):
        stats = stream.feed_file(Path(name), max_lines=batch_lines)
        if stats is not None:
            rows = Rows()
            stream.finish(rows)  # nothing left: the file was its final batch
            if rows:
                sink.write(rows)
            return
    parts: list[bytes] = []
    lines = clock_lines = 0
    last_flush = time.monotonic()

    def flush(final: bool) -> None:
        nonlocal parts, lines, clock_lines
        rows = Rows()
        if parts:
            stream.feed_raw(RawBatch(parts, lines, clock_lines), rows, final=final)
            parts, lines, clock_lines = [], 0, 0
        if final:
            stream.finish(rows)  # nothing left when the last batch was stored with the stream's end
        if rows:
            sink.write(rows)

    with open_binary(name) as binary:
        for chunk in iter_raw_chunks(binary, CHUNK_BYTES):
            if lines >= batch_lines:
                flush(final=False)
            parts.append(chunk)
            lines += chunk.count(b"\n")
            clock_lines += chunk.count(b" ms clock, ")
            now = time.monotonic()
            if is_stdin and (lines >= batch_lines or now - last_flush >= STDIN_FLUSH_SECONDS):
                flush(final=False)  # a live pipe: rows show up while it runs
                last_flush = now
    flush(final=True)


def _plain_regular_file(name: str) -> bool:
    """A regular file (not a pipe or a device, which a second reader would take bytes from) that is not gzip."""
    try:
        if not stat.S_ISREG(os.stat(name).st_mode):
            return False
        with open(name, "rb") as file:
            return file.read(2) != _GZIP_MAGIC
    except OSError:
        return False


def _ingest_container_file(
    sink: Sink, source: Input, *, service: str, start_ns: int | None, batch_lines: int
) -> LineStats:
    """A CRI or Docker json-file log: one stream per container stream (stderr, stdout), partial records
    joined; each line is observed at its record's time (or, with --start-time, anchored on it)."""
    streams: dict[str, GctraceStream] = {}
    received_at = datetime.now(UTC)
    last_time = os.stat(source.name).st_mtime_ns
    total = LineStats()
    pending: list[str] = []

    def stream_for(name: str) -> GctraceStream:
        stream = streams.get(name)
        if stream is None:
            stream = streams[name] = GctraceStream(
                service=service, instance=source.instance, source="file", received_at=received_at,
                start_ns=start_ns, now_ns=time.time_ns, name=f"{source.name}[{name or 'plain'}]",
                observed=start_ns is None,
            )
        return stream

    def feed(raw: list[str], final: bool) -> list[str]:
        nonlocal last_time
        entries, consumed = decode(raw, final=final)
        by_stream: dict[str, tuple[list[str], list[int]]] = {}
        for entry in entries:
            last_time = entry.time_ns if entry.time_ns is not None else last_time
            lines, times = by_stream.setdefault(entry.stream, ([], []))
            lines.append(entry.text)
            times.append(last_time)
        rows = Rows()
        for name, (lines, times) in by_stream.items():
            stream = stream_for(name)
            stream.feed(lines, rows, terminated=False, observed_ns=times if stream.observed else None)
        if final:
            for stream in streams.values():
                stream.finish(rows)
        if rows:
            sink.write(rows)
        return raw[consumed:]

    with open_binary(source.name) as binary:
        for chunk in iter_line_chunks(binary):
            pending.extend(chunk)
            if len(pending) >= batch_lines:
                pending = feed(pending, final=False)
    feed(pending, final=True)
    for stream in streams.values():
        total.add(stream.stats)
    sink.telemetry.records_in.add(total.lines, {"source": "file", "signal": "gctrace"})
    return total


def _follow(settings: Settings, args: argparse.Namespace) -> int:
    """--follow: one file, tailed like the file source of `fleetwatch run` (pipeline.sources.tail)."""
    if len(args.paths) != 1 or args.paths[0] == "-" or args.start_time:
        print("fleetwatch: --follow takes exactly one file (not -) and no --start-time", file=sys.stderr)
        return 2
    from pipeline.sources.tail import follow_command

    try:
        return follow_command(settings, args.paths[0], service=args.service, instance=args.instance or None)
    except (StoreError, StoreUnavailable, MigrationError) as exc:
        print(f"fleetwatch: store error: {exc}", file=sys.stderr)
        return 1


def _inputs(args: argparse.Namespace) -> list[Input]:
    inputs = []
    for name in args.paths:
        if name != "-" and not Path(name).is_file():
            raise UsageError(f"no such file: {name}")
        instance = args.instance or ("stdin" if name == "-" else Path(name).name)
        inputs.append(Input(name=name, instance=instance))
    if sum(1 for i in inputs if i.name == "-") > 1:
        raise UsageError("stdin (-) can be given only once")
    return inputs


def _report(name: str, stats: LineStats) -> str:
    return (
        f"{name}: {stats.lines} lines read, {stats.events} gc events stored, "
        f"{stats.other_runtime} other runtime rows, {stats.logs} log lines, {stats.quarantined} quarantined"
        + (f" ({stats.repaired} split lines repaired)" if stats.repaired else "")
    )


def ingest_command(settings: Settings, args: argparse.Namespace) -> int:
    """Exit codes: 0 done, 1 the store failed, 2 bad arguments."""
    if getattr(args, "follow", False):
        return _follow(settings, args)
    args.service = args.service or "unknown"
    try:
        start_ns = parse_start_time(args.start_time) if args.start_time else None
        inputs = _inputs(args)
    except UsageError as exc:
        print(f"fleetwatch: {exc}", file=sys.stderr)
        return 2
    store = Store.from_settings(settings)
    try:
        ctx = context_from_settings(settings)
        migrate(store, settings.sql_dir, ctx)
        fast = GctraceFastPath(store, settings.sql_dir, ctx)
        total = LineStats()

        def one(source: Input) -> LineStats:
            anchor = start_ns
            if anchor is None and source.name != "-" and file_format(source.name) == PLAIN:
                anchor = file_start_ns(source.name, fast)
            return ingest_stream(store, source, service=args.service, start_ns=anchor, fast=fast)

        # Inputs are independent streams (each its own clock), so several go at once: the engine runs each
        # connection's statements on a thread of its own, and one clean batch is one statement on one core.
        jobs = max(1, min(getattr(args, "jobs", None) or default_jobs(), len(inputs), MAX_JOBS))
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ingest")
        try:
            for source, stats in zip(inputs, pool.map(one, inputs), strict=True):
                total.add(stats)
                print(_report("stdin" if source.name == "-" else source.name, stats), flush=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if len(inputs) > 1:
            print(_report("total", total))
        return 0
    except (StoreError, StoreUnavailable, MigrationError) as exc:
        print(f"fleetwatch: store error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
