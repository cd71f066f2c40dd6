"""The gctrace fast path (engine parses runs of gc lines) against the Python normalizer, the reference.

Every capture in tests/data/go-runtime, a real Go program's stderr, and streams built to be hard (restarts
inside a run and at run boundaries, torn lines, split lines at batch boundaries, out-of-range numbers, a gc
line with Unicode digits) go through both, each into a database of its own on the real engine; every row of
every table and every quarantine row must be identical, as must the stats.
"""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.normalize.gctrace import GctraceStream, LineStats, stream_span_ns
from pipeline.normalize.rows import Rows
from pipeline.normalize.runtime_lines import parse_gc
from pipeline.sink import Sink
from pipeline.sources.files import file_start_ns, iter_raw_chunks, iter_raw_line_chunks
from pipeline.sources.gctrace_fast import FastGctraceStream, GctraceFastPath, SpanUndecided, raw_lines
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext
from tests.conftest import DATA

SAMPLES = DATA / "go-runtime"
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "quarantine")
START = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
RECEIVED = datetime.now(UTC).replace(microsecond=123000)


def _stream(name: str) -> GctraceStream:
    return GctraceStream(service="api", instance=name, source="file", received_at=RECEIVED,
                         start_ns=int(START.timestamp()) * 10**9, name=name)


def _feed(stream: object, lines: list[str], sink: Sink, batch: int) -> None:
    for i in range(0, len(lines), batch):
        rows = Rows()
        stream.feed(lines[i:i + batch], rows, terminated=False)  # type: ignore[attr-defined]
        if rows:
            sink.write(rows)
    rows = Rows()
    stream.finish(rows)  # type: ignore[attr-defined]
    if rows:
        sink.write(rows)


def _feed_raw(stream: object, data: bytes, sink: Sink, batch: int, *, fast: bool, by_bytes: bool = True,
              exact: bool = False) -> None:
    """As `ingest_stream` reads a file: chunks of lines with their bytes. The fast stream is given only the
    bytes (`feed_raw`, as a file is ingested), or with `by_bytes=False` the lines and their bytes (`feed`
    with `raw`); the reference only the lines. The batches are the same for both: about `batch` lines, or
    exactly `batch` lines with `exact`."""
    lines: list[str] = []
    raw: list[bytes] = []
    if exact:
        starts = [0, *(m.end() for i, m in enumerate(re.finditer(b"\n", data)) if (i + 1) % batch == 0)]
        for a, b in zip(starts, [*starts[1:], len(data)], strict=True):
            if a < b:
                rows = Rows()
                if fast:
                    stream.feed_raw(data[a:b], rows, final=b == len(data))  # type: ignore[attr-defined]
                else:
                    stream.feed(raw_lines(data[a:b]), rows, terminated=False)  # type: ignore[attr-defined]
                if rows:
                    sink.write(rows)
        rows = Rows()
        stream.finish(rows)  # type: ignore[attr-defined]
        if rows:
            sink.write(rows)
        return

    def flush() -> None:
        rows = Rows()
        if fast and by_bytes:
            stream.feed_raw(b"".join(raw), rows)  # type: ignore[attr-defined]
        else:
            extra = {"raw": b"".join(raw)} if fast else {}
            stream.feed(lines, rows, terminated=False, **extra)  # type: ignore[attr-defined]
        lines.clear()
        raw.clear()
        if rows:
            sink.write(rows)

    # Small chunks: many cut points. Both readers cut at the same places; only the bytes-only one leaves a
    # final unterminated line as it is.
    pieces = zip(iter_raw_line_chunks(io.BytesIO(data), 4096), iter_raw_chunks(io.BytesIO(data), 4096), strict=True)
    for (chunk_bytes, chunk), piece in pieces:
        lines.extend(chunk)
        raw.append(piece if by_bytes else chunk_bytes)
        if len(lines) >= batch:
            flush()
    if lines:
        flush()
    rows = Rows()
    stream.finish(rows)  # type: ignore[attr-defined]
    if rows:
        sink.write(rows)


def _table(store: Store, table: str) -> list[tuple]:
    return sorted(store.rows(f"SELECT * FROM {store.database}.{table}"), key=repr)


def _both(settings: Settings, ref: Store, fast_store: Store, streams: dict[str, list[str]] | dict[str, bytes], *,
          batch: int, min_run: int, min_chunk: int = 1_000, by_bytes: bool = True, exact: bool = False,
          seen: list[FastGctraceStream] | None = None) -> tuple[LineStats, LineStats, int]:
    """Bytes streams are read as a file is (`_feed_raw`); the fast path must then have staged or stored every
    batch from its bytes. `seen` collects the fast streams (for their counters)."""
    ref_stats, fast_stats, engine_lines, raw_batches = LineStats(), LineStats(), 0, 0
    fast = GctraceFastPath(fast_store, settings.sql_dir, RenderContext(fast_store.database, settings.retention_days),
                           min_run=min_run, min_chunk=min_chunk)
    for name, data in streams.items():
        reference = _stream(name)
        fast_stream = fast.stream(_stream(name), service="api", instance=name, source="file")
        if isinstance(data, bytes):
            _feed_raw(reference, data, Sink(ref), batch, fast=False, exact=exact)
            _feed_raw(fast_stream, data, Sink(fast_store), batch, fast=True, by_bytes=by_bytes, exact=exact)
            raw_batches += fast_stream.raw_batches + fast_stream.clean_chunks
        else:
            _feed(reference, data, Sink(ref), batch)
            _feed(fast_stream, data, Sink(fast_store), batch)
        ref_stats.add(reference.stats)
        fast_stream.close()
        fast_stats.add(fast_stream.stats)
        engine_lines += fast_stream.engine_lines
        if seen is not None:
            seen.append(fast_stream)
    for table in TABLES:
        assert _table(fast_store, table) == _table(ref, table), table
    # Every stream dropped its stage table.
    assert fast_store.scalar("SELECT count() FROM system.tables WHERE database = {db:String} "
                             "AND name LIKE 'gctrace_fast_%'", {"db": fast_store.database}) == 0
    assert fast_stats == ref_stats
    if all(isinstance(data, bytes) for data in streams.values()):
        assert raw_batches > 0  # (a short stream's one batch may be too short for the engine)
    return ref_stats, fast_stats, engine_lines


def _captures() -> dict[str, list[str]]:
    return {p.name: p.read_text(encoding="utf-8").splitlines() for p in sorted(SAMPLES.glob("*.txt"))}


@pytest.mark.parametrize(("batch", "min_run"), [(50_000, 64), (701, 8)])
def test_every_capture_gives_identical_rows(settings, store, second_store, batch, min_run) -> None:
    streams = _captures()
    stats, _, engine_lines = _both(settings, store, second_store, streams, batch=batch, min_run=min_run)
    assert stats.events > 3000 and stats.logs > 0 and stats.repaired > 0
    assert engine_lines > stats.events // 2  # the engine did most of the gc lines


@pytest.mark.parametrize(("batch", "min_run", "by_bytes"), [(50_000, 64, True), (701, 8, True), (701, 8, False)])
def test_every_capture_from_raw_bytes_gives_identical_rows(settings, store, second_store, batch, min_run,
                                                           by_bytes) -> None:
    streams = {p.name: p.read_bytes() for p in sorted(SAMPLES.glob("*.txt"))}
    stats, _, engine_lines = _both(settings, store, second_store, streams, batch=batch, min_run=min_run,
                                   min_chunk=16, by_bytes=by_bytes)
    assert stats.events > 3000 and stats.repaired > 0
    assert engine_lines > stats.events // 2


def test_raw_bytes_that_are_not_utf8_or_end_in_crlf_give_identical_rows(settings, store, second_store) -> None:
    gc_lines = [line.encode() for line in (SAMPLES / "go1.27.3-storm.txt").read_text().splitlines()
                if line.startswith("gc ")]
    odd = list(gc_lines[:300])
    odd[10] = b"\xff\xfe " + odd[10]             # not UTF-8: Python keeps backslash escapes, the engine the bytes
    odd[20] = odd[20][:40] + b"\xc3" + odd[20][40:]  # a broken sequence inside the gc line
    odd[30] = b"caf\xc3\xa9 " + odd[30]           # UTF-8 prefix
    crlf = b"\r\n".join(gc_lines[:400]) + b"\r\n"
    streams = {"odd": b"\n".join(odd) + b"\n", "crlf": crlf, "unterminated": b"\n".join(gc_lines[:250]),
               "restarted": b"\n".join(gc_lines[:150] + gc_lines[:120]) + b"\n"}
    stats, _, engine_lines = _both(settings, store, second_store, streams, batch=97, min_run=8, min_chunk=16)
    assert stats.quarantined >= 1 and engine_lines > 900
    incarnations = store.rows(f"SELECT instance, max(incarnation) FROM {store.database}.gc_events "
                              f"GROUP BY instance ORDER BY instance")
    assert dict(incarnations)["restarted"] == 2


def test_restarts_torn_and_out_of_range_lines_give_identical_rows(settings, store, second_store) -> None:
    storm = (SAMPLES / "go1.27.3-storm.txt").read_text().splitlines()
    steady = (SAMPLES / "go1.19.8-steady.txt").read_text().splitlines()
    gc_lines = [line for line in storm if line.startswith("gc ")]
    restarted = gc_lines[:150] + gc_lines[:80] + gc_lines[40:200] + steady[:300] + gc_lines
    torn = list(gc_lines[:100])
    torn[10] = torn[10][:25]                                   # torn, never completed
    torn[20] = torn[20][:30] + "app: hello"                    # split by foreign output...
    torn.insert(21, torn[21 - 1][:0] + gc_lines[19][30:])      # ...with the wrong tail
    torn[40] = torn[40].replace(" P", "0000000 P")             # P count out of range for the column
    torn[50] = torn[50].replace("gc 51 ", "gc 99999999999 ")   # gc number out of range
    torn[60] = torn[60].replace("gc 61 ", "gc ٦١ ")            # Unicode digits: Python's \d takes them
    torn[70] = "2026-12-06T05:00:00Z stderr F " + torn[70]    # a shipper prefix
    torn[72] = "2026-12-06 05:00:01\t" + torn[72]                # a prefix ending in a tab
    torn[74] = "név\u00a0" + torn[74]                          # non-ASCII, a no-break space
    torn[76] = torn[76] + "  \t"                               # trailing blanks
    torn[78] = "pacer: x " + torn[78]                           # another runtime head in the prefix
    torn[80] = torn[80] + "\r"
    streams = {"restarted": restarted, "torn": torn, "restart-first": gc_lines[100:200] + gc_lines[:100]}
    stats, _, engine_lines = _both(settings, store, second_store, streams, batch=211, min_run=8)
    assert stats.quarantined >= 2 and engine_lines > 0
    incarnations = store.rows(f"SELECT instance, max(incarnation) FROM {store.database}.gc_events "
                              f"GROUP BY instance ORDER BY instance")
    # gc 1..150, back to 1, back to 41, then another program's cycles from 1, then back to 1.
    assert incarnations == [("restart-first", 2), ("restarted", 5), ("torn", 1)]


_HEAD = re.compile(r"^gc \d+ @\d+\.\d+s ")


def _plain_stream(count: int, first: int = 0) -> list[str]:
    """A plain gctrace stream: real gc lines of every capture, renumbered with @T rising (a storm)."""
    tails = [line[m.end():] for p in sorted(SAMPLES.glob("*.txt")) for line in p.read_text().splitlines()
             if (m := _HEAD.match(line)) and parse_gc(line) is not None]
    return [f"gc {k + 1} @{k * 0.05:.3f}s {tails[k % len(tails)]}" for k in range(first, first + count)]


def _encode(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_clean_chunks_are_one_statement_and_others_fall_back(settings, store, second_store) -> None:
    """Batches of plain gc lines are stored by one statement each; a batch with anything else (an application
    line, a torn gc line, a restart inside it or on its first line, a torn line at its end or among the lines
    held back for the next batch) stores nothing there and takes the span path: rows stay the reference's."""
    plain = _plain_stream(3_000)
    batch = 200  # a stored chunk is the 2 held-back lines + the batch's lines - 2: boundaries at 198, 398, ...
    torn = plain[60][:plain[60].index(" ms cpu, ") + 9]  # cut after its " ms clock, "
    restart_at = {f"restart-{k}": 600 + k for k in (-3, -2, -1, 0, 1)}  # around the chunk boundary at 598
    streams: dict[str, bytes] = {
        "clean": _encode(plain),
        "app-line-after-clean": _encode([*plain[:900], "app: hello", *plain[900:2000]]),
        "torn-after-clean": _encode([*plain[:900], torn, *plain[900:2000]]),
        "torn-ends-chunk": _encode([*plain[:397], torn, *plain[397:1500]]),      # the last stored line
        "torn-held-back": _encode([*plain[:399], torn, *plain[399:1500]]),       # among the held-back lines
        "restart-inside": _encode(plain[:700] + plain[:900]),
        **{name: _encode(plain[:at] + plain[:800]) for name, at in restart_at.items()},
        "unterminated": _encode(plain[:1000])[:-1],
        # a torn gc line in every batch: refused, then the statement is skipped for 1, 2, 4, ... batches
        "torn-every-batch": _encode([torn if k % 200 == 100 else line for k, line in enumerate(plain)]),
    }
    seen: list[FastGctraceStream] = []
    stats, _, engine_lines = _both(settings, store, second_store, streams, batch=batch, min_run=8, min_chunk=16,
                                   exact=True, seen=seen)
    by_name = {s.params["instance"]: s for s in seen}
    assert stats.quarantined == 3 + len(plain) // batch and stats.logs == 1
    # Every line of the clean stream went through chunk statements, the last batch with the stream's end.
    assert by_name["clean"].engine_lines == len(plain)
    assert by_name["clean"].clean_chunks == len(plain) // batch and by_name["clean"].span_batches == 0
    for name in ("app-line-after-clean", "torn-after-clean", "torn-ends-chunk", "torn-held-back", "restart-inside",
                 *restart_at):
        assert by_name[name].clean_chunks > 0 and by_name[name].span_batches > 0, name
    # Those whose bad line only the engine sees: the statement ran and refused the batch.
    for name in ("torn-after-clean", "torn-held-back", "restart-inside", *restart_at):
        assert by_name[name].refused_chunks > 0, name
    incarnations = dict(store.rows(f"SELECT instance, max(incarnation) FROM {store.database}.gc_events "
                                   f"GROUP BY instance"))
    assert incarnations["restart-inside"] == 2 and all(incarnations[name] == 2 for name in restart_at)
    assert incarnations["clean"] == 1 and engine_lines > 10_000
    assert by_name["unterminated"].engine_lines == 1000 and by_name["unterminated"].span_batches == 0
    every = by_name["torn-every-batch"]
    assert every.clean_chunks == 0 and every.span_batches == len(plain) // batch and every.refused_chunks == 4


def test_a_refused_chunk_stores_nothing_even_when_large(settings, store, second_store) -> None:
    """The chunk statement's check sees the whole batch before a row is written: one bad line at the very end of
    a 100,000-line batch leaves gc_events as it was, and the span path then stores each line once."""
    plain = _plain_stream(100_004)
    bad = plain[-4][:plain[-4].index(" ms cpu, ") + 9]  # torn; the line before the batch's last stored line
    streams = {"big": _encode([*plain[:-4], bad, *plain[-3:]])}
    seen: list[FastGctraceStream] = []
    _both(settings, store, second_store, streams, batch=200_000, min_run=64, seen=seen)
    assert seen[0].refused_chunks == 1 and seen[0].clean_chunks == 0


def test_real_program_stderr_gives_identical_rows(build_go, settings, store, second_store, tmp_path: Path) -> None:
    binary = build_go(DATA / "go" / "gcstorm")
    proc = subprocess.run(
        [str(binary), "-n", "60000", "-logevery", "300"], capture_output=True,
        env={**os.environ, "GODEBUG": "gctrace=1,gcpacertrace=1,scavtrace=1", "GOGC": "5"}, timeout=120,
    )
    assert proc.returncode == 0
    lines = proc.stderr.decode().splitlines()
    stats, _, _ = _both(settings, store, second_store, {"gcstorm": lines}, batch=500, min_run=16)
    assert stats.events == int(proc.stdout.decode().strip())


def _span_both(fast: GctraceFastPath, data: bytes, chunk: int) -> tuple[int | None, int | None] | None:
    """(engine span, reference span) of a stream, or None when the engine leaves it to Python."""
    starts = _cuts(data, chunk)
    chunks = [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]
    reference = stream_span_ns(line for _, lines in iter_raw_line_chunks(io.BytesIO(data)) for line in lines)
    try:
        return fast.span_ns(chunks), reference
    except SpanUndecided:
        return None


def _cuts(data: bytes, chunk: int) -> list[int]:
    """Starts of pieces of about `chunk` bytes, each at a line's start."""
    starts, i = [], 0
    while i < len(data):
        starts.append(i)
        nl = data.find(b"\n", i + chunk)
        i = len(data) if nl < 0 else nl + 1
    return starts


def test_engine_span_is_the_reference_span(settings, second_store) -> None:
    fast = GctraceFastPath(second_store, settings.sql_dir,
                           RenderContext(second_store.database, settings.retention_days))
    storm = [line for line in (SAMPLES / "go1.27.3-storm.txt").read_text().splitlines() if line.startswith("gc ")]
    streams = {p.name: p.read_bytes() for p in sorted(SAMPLES.glob("*.txt"))}
    # Restarts inside a piece and exactly at a piece's start; a stream that ends in a restart.
    streams["restarted"] = ("\n".join(storm[:150] + storm[:80] + storm[40:200]) + "\n").encode()
    streams["ends-restarted"] = ("\n".join(storm[:300] + storm[:3]) + "\n").encode()
    streams["no-gc"] = b"app: hello\napp: bye\n"
    decided = 0
    for name, data in streams.items():
        for chunk in (1 << 12, 1 << 20):
            both = _span_both(fast, data, chunk)
            if both is not None:
                decided += 1
                assert both[0] == both[1], (name, chunk)
    assert decided >= len(streams)  # most streams need no Python pass
    for name in ("restarted", "ends-restarted", "go1.27.3-storm.txt"):
        both = _span_both(fast, streams[name], 1 << 12)
        assert both is not None and both[0] is not None and both[0] == both[1], name
    assert _span_both(fast, streams["no-gc"], 1 << 12) == (None, None)
    # A torn gc line that Python's pass reads differently is left to Python.
    torn = ("\n".join([*storm[:100], storm[100][:60] + " ms clock, x"]) + "\n").encode()
    assert _span_both(fast, torn, 1 << 12) is None
    assert second_store.scalar("SELECT count() FROM system.tables WHERE database = {db:String} "
                               "AND name LIKE 'gctrace_span_%'", {"db": second_store.database}) == 0


def test_file_start_from_the_engine_is_the_reference(settings, second_store, tmp_path: Path) -> None:
    fast = GctraceFastPath(second_store, settings.sql_dir,
                           RenderContext(second_store.database, settings.retention_days))
    for sample in sorted(SAMPLES.glob("*.txt")):
        path = tmp_path / sample.name
        path.write_bytes(sample.read_bytes())
        assert file_start_ns(str(path), fast) == file_start_ns(str(path)), sample.name


def _random_gc_lines(count: int, seed: int) -> list[str]:
    """Plain gc lines whose numbers take every width the recognition allows (ms values of up to 12 digits with
    fractions of up to 20, heap figures of up to 18 digits, @T fractions longer than six digits, leading zeros),
    in every form (leak check, stacks, forced), after prefixes that hold the words the form flags look for, and
    with trailing blanks: the fields fragment's conversions and the flags read off the line's end must give the
    reference's rows for all of them."""
    rnd = random.Random(seed)

    def digits(low: int, high: int) -> str:
        return "".join(rnd.choice("0123456789") for _ in range(rnd.randint(low, high)))

    def ms() -> str:
        return digits(1, 12) + (f".{digits(1, 20)}" if rnd.random() < 0.8 else "")

    prefixes = ["", "", "", "app 1 MB globals, 2 P (forced) ", "x (forced)) ", "12:00:01.5 ",
                "a 9 MB stacks, 9 MB globals, 4 P ", "))) 1.2.3 "]
    lines = []
    for k in range(count):
        since = f"{k * 0.05:.3f}" + digits(0, 12)  # rising: the extra digits add less than 0.001
        leak = " (checking for goroutine leaks)" if rnd.random() < 0.3 else ""
        stacks = f", {digits(1, 18)} MB stacks, {digits(1, 18)} MB globals" if rnd.random() < 0.5 else ""
        forced = " (forced)" if rnd.random() < 0.3 else ""
        trail = rnd.choice(["", "", " ", "  \t", "\t \t"])
        lines.append(f"{rnd.choice(prefixes)}gc {k + 1} @{since}s {rnd.randint(0, 255)}%{leak}: "
                     f"{ms()}+{ms()}+{ms()} ms clock, {ms()}+{ms()}/{ms()}/{ms()}+{ms()} ms cpu, "
                     f"{digits(1, 18)}->{digits(1, 18)}->{digits(1, 18)} MB, {digits(1, 18)} MB goal{stacks}, "
                     f"{rnd.randint(1, 9999)} P{forced}{trail}")
    return lines


def test_numbers_of_every_width_and_forms_after_tricky_prefixes_give_identical_rows(settings, store,
                                                                                   second_store) -> None:
    lines = _random_gc_lines(4_000, seed=16)
    seen: list[FastGctraceStream] = []
    _both(settings, store, second_store, {"widths": _encode(lines)}, batch=500, min_run=8, min_chunk=16,
          exact=True, seen=seen)
    # Every line went through the chunk statement (gc_recognise.sql, gc_fields.sql), none through the span path.
    assert seen[0].engine_lines == len(lines) and seen[0].clean_chunks > 0 and seen[0].span_batches == 0
    forms = store.rows(f"SELECT DISTINCT format, forced FROM {store.database}.gc_events")
    assert sorted(forms) == [(f, forced) for f in ("go1.18", "go1.26", "go1.6") for forced in (False, True)]
