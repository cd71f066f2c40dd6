"""The OTLP journal (pipeline/journal.py): plain gc lines are answered once they are on disk, and stored in
gc_events from there in large statements, exactly once: the same rows as the reference in every table, a segment
cut by a crash stored up to its last whole row, a segment whose insert had landed not stored again, appends refused
(retryable) while the store is away and too much waits, one process per journal. Real engine, real segment files.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.journal import WITNESS_PREFIX, GcLinesJournal, JournalFull
from pipeline.normalize.otlp import normalize_request
from pipeline.normalize.plain_gc import GC_LINES_TABLE
from pipeline.normalize.rows import Rows
from pipeline.sink import EngineGcLines, Sink, statement_input, whole_rows
from pipeline.store.client import Store, StoreUnavailable
from pipeline.store.migrate import context_from_settings
from pipeline.witness import ReplayWitness
from tests.integration.test_otlp_gc_engine import (
    CAPTURES,
    DATA,
    RECEIVED,
    TABLES,
    _request,
    requests,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture
def stores(two_stores: tuple[Store, Store], settings: Settings) -> tuple[Settings, Store, Store]:
    """The reference's database and the journal's (the engine path's), with the journal's settings."""
    ref_store, store = two_stores
    return settings.model_copy(update={"database": store.database}), ref_store, store


def _journal(settings: Settings, store: Store, directory: Path, **kw: object) -> tuple[GcLinesJournal, list[bool]]:
    """A journal storing through the engine path, as `fleetwatch run` builds it; returns it and the `replay` flag
    of every segment it stored."""
    gc_lines = EngineGcLines(store, settings.sql_dir, context_from_settings(settings))
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))
    replays: list[bool] = []

    def store_segment(path: Path, lines: int, name: str, replay: bool) -> int:
        replays.append(replay)
        return gc_lines.write_segment(path, lines, name, guard=witness.ensure if replay else None)

    return GcLinesJournal(directory, store_segment, whole_rows, **kw), replays  # type: ignore[arg-type]


def _stored(journal: GcLinesJournal) -> None:
    """Start the journal, wait until it stored every line it holds, stop it."""
    journal.start()
    try:
        assert journal.wait_stored(60)
    finally:
        journal.stop(30)


def _gc_input(lines: list[str], instance: str) -> tuple[bytes, int]:
    """The statement input (a segment's bytes) of one request of plain gc lines."""
    rows = Rows()
    normalize_request("logs", _request(lines, instance, 0), rows=rows, source="otlp_http", received_at=RECEIVED,
                      plain_gc=True)
    assert rows.count(GC_LINES_TABLE) == len(lines)
    return statement_input(rows.tables[GC_LINES_TABLE]), len(lines)


def _storm_lines(n: int) -> list[str]:
    lines = (DATA / "go-runtime" / "go1.27.3-storm.txt").read_text().splitlines()
    return [line for line in lines if line.startswith("gc ")][:n]


def _table(store: Store, table: str) -> list[tuple]:
    return store.rows(f"SELECT * EXCEPT ingest_batch FROM {store.database}.{table} ORDER BY ALL")


def test_journal_rows_equal_the_reference_in_every_table(stores: tuple[Settings, Store, Store],
                                                         tmp_path: Path) -> None:
    settings, ref_store, store = stores
    # Small segments, so the captures' lines span many of them, and segments close by size and by time.
    journal, replays = _journal(settings, store, tmp_path / "journal", segment_lines=3_000, segment_seconds=0.2)
    journal.start()
    ref_sink, sink = Sink(ref_store), Sink(store, journal=journal)
    appended = 0
    try:
        for capture in CAPTURES:
            ref_merged, merged = Rows(), Rows()
            for request in requests(capture):
                normalize_request("logs", request, rows=ref_merged, source="otlp_http", received_at=RECEIVED)
                normalize_request("logs", request, rows=merged, source="otlp_http", received_at=RECEIVED,
                                  plain_gc=True)
            ref_sink.write(ref_merged)
            appended += merged.count(GC_LINES_TABLE)
            sink.write(merged)
        assert journal.wait_stored(120)
    finally:
        journal.stop(30)
    assert journal.stored_segments > 3 and replays and not any(replays)
    for table in TABLES:
        assert _table(store, table) == _table(ref_store, table), table
    gc = store.dicts(f"SELECT countIf(startsWith(ingest_batch, '{WITNESS_PREFIX}')) AS journaled, "
                     f"uniqExact(ingest_batch) AS segments FROM {store.database}.gc_events")[0]
    assert gc["journaled"] == appended > 10_000 and gc["segments"] > 3
    assert not [p.name for p in (tmp_path / "journal").iterdir() if p.name != "lock"]


def test_a_segment_cut_by_a_crash_is_stored_up_to_its_last_whole_row(stores: tuple[Settings, Store, Store],
                                                                     tmp_path: Path) -> None:
    settings, _, store = stores
    directory = tmp_path / "journal"
    directory.mkdir()
    whole, lines = _gc_input(_storm_lines(120), "whole")
    torn, _ = _gc_input(_storm_lines(30), "torn")
    (directory / "0000000000001-deadbeef-000001.open").write_bytes(whole + torn[: len(torn) // 2])
    journal, replays = _journal(settings, store, directory)
    _stored(journal)
    assert replays == [True]
    counts = store.rows(f"SELECT instance, count(), any(ingest_batch) FROM {store.database}.gc_events "
                        "GROUP BY instance")
    assert counts == [("whole", lines, WITNESS_PREFIX + "0000000000001-deadbeef-000001")]


def test_a_segment_whose_insert_landed_is_not_stored_again(stores: tuple[Settings, Store, Store],
                                                           tmp_path: Path) -> None:
    """The process died after the segment's insert and before deleting it: found at start, checked by its
    witness, deleted without a second insert. A segment whose insert never ran beside it is stored."""
    settings, _, store = stores
    directory = tmp_path / "journal"
    directory.mkdir()
    landed, landed_lines = _gc_input(_storm_lines(80), "landed")
    missing, missing_lines = _gc_input(_storm_lines(50), "missing")
    landed_path = directory / "0000000000001-deadbeef-000001.ready"
    landed_path.write_bytes(landed)
    (directory / "0000000000001-deadbeef-000002.ready").write_bytes(missing)
    EngineGcLines(store, settings.sql_dir, context_from_settings(settings)).write_segment(
        landed_path, landed_lines, WITNESS_PREFIX + landed_path.stem)
    journal, replays = _journal(settings, store, directory)
    _stored(journal)
    assert replays == [True, True]
    counts = store.rows(f"SELECT instance, count() FROM {store.database}.gc_events GROUP BY instance ORDER BY instance")
    assert counts == [("landed", landed_lines), ("missing", missing_lines)]
    assert sorted(p.name for p in directory.iterdir()) == ["lock"]


def test_appends_are_refused_while_the_store_is_away_and_the_journal_full(stores: tuple[Settings, Store, Store],
                                                                          tmp_path: Path) -> None:
    """The store goes away (its segment inserts fail as unavailable): appends go on until `max_bytes` wait, then
    are refused with a retryable error; once it is back, everything appended is stored, once."""
    settings, _, store = stores
    gc_lines = EngineGcLines(store, settings.sql_dir, context_from_settings(settings))
    away = threading.Event()
    away.set()
    attempts: list[tuple[str, bool]] = []
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))

    def store_segment(path: Path, lines: int, name: str, replay: bool) -> int:
        attempts.append((name, replay))
        if away.is_set():
            raise StoreUnavailable("connection refused")
        return gc_lines.write_segment(path, lines, name, guard=witness.ensure if replay else None)

    data, lines = _gc_input(_storm_lines(200), "away")
    journal = GcLinesJournal(tmp_path / "journal", store_segment, whole_rows, segment_lines=lines,
                             max_bytes=1024 * 1024).start()
    appended = 0
    try:
        with pytest.raises(JournalFull, match="retry later"):
            for _ in range(10 * (1024 * 1024 // len(data) + 1)):
                journal.append(data, lines)
                appended += lines
        assert isinstance(JournalFull("x"), StoreUnavailable)  # the receivers' retryable answer
        assert journal.backlog_bytes <= 1024 * 1024 and appended
        away.clear()
        assert journal.wait_stored(120)
    finally:
        journal.stop(30)
    assert len(attempts) > appended // lines  # the first segment was tried while the store was away
    # a segment tried while the store was away is checked by witness when tried again (its insert may have landed)
    first = attempts[0][0]
    assert attempts[0] == (first, False) and [replay for name, replay in attempts[1:] if name == first] and all(
        replay for name, replay in attempts[1:] if name == first)
    assert store.scalar(f"SELECT count() FROM {store.database}.gc_events") == appended


def test_one_process_per_journal(stores: tuple[Settings, Store, Store], tmp_path: Path) -> None:
    settings, _, store = stores
    first, _ = _journal(settings, store, tmp_path / "journal")
    first.start()
    try:
        second, _ = _journal(settings, store, tmp_path / "journal")
        with pytest.raises(RuntimeError, match="used by another process"):
            second.start()
    finally:
        first.stop(10)


def test_answered_lines_survive_a_kill_and_are_stored_once_after_the_restart(restartable) -> None:
    """`fleetwatch run` answers exports of plain gc lines, then is killed (SIGKILL) before any segment is stored;
    the restarted process stores every answered line from the journal on disk, exactly once."""
    held = {"FLEETWATCH_OTLP__JOURNAL_SEGMENT_SECONDS": "3600", "FLEETWATCH_OTLP__JOURNAL_IDLE_SECONDS": "3600"}
    fw = restartable(env=held).start()
    lines = _storm_lines(200)
    bodies = [_request(lines, f"kill-{i}", 0).SerializeToString() for i in range(5)]
    for body in bodies:
        request = urllib.request.Request(f"{fw.http_url}/v1/logs", data=body, method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200
    fw.kill()
    journal = fw.store_path / "otlp-journal" / "fleetwatch"
    assert [p.suffix for p in journal.iterdir() if p.name != "lock"] == [".open"]
    assert fw.sql("SELECT count() AS n FROM fleetwatch.gc_events") == [{"n": 0}]
    for name in held:
        del fw.env[name]
    fw.start()
    assert fw.terminate() == 0, fw.log()[-3000:]
    counts = fw.sql("SELECT instance, count() AS n, uniqExact(ingest_batch) AS segments FROM fleetwatch.gc_events "
                    "GROUP BY instance ORDER BY instance")
    assert counts == [{"instance": f"kill-{i}", "n": len(lines), "segments": 1} for i in range(5)]
    assert [p.name for p in journal.iterdir()] == ["lock"]


_FAILING_DISK = """
import resource, signal, sys
from pathlib import Path
from pipeline.journal import GcLinesJournal
from pipeline.sink import whole_rows
from pipeline.store.client import StoreUnavailable

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past RLIMIT_FSIZE a write fails with EFBIG instead
directory, row, lines = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes(), int(sys.argv[3])

def store_is_away(*_args):
    raise StoreUnavailable("away")

journal = GcLinesJournal(directory, store_is_away, whole_rows, segment_lines=10**9).start()
journal.append(row, lines)
resource.setrlimit(resource.RLIMIT_FSIZE, (len(row) + len(row) // 2, resource.RLIM_INFINITY))
try:
    journal.append(row, lines)
    print("appended")
except StoreUnavailable as exc:
    print("refused:", exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
journal.append(row, lines)
journal.stop(0.2)
"""


def test_an_append_the_disk_refuses_is_refused_whole(tmp_path: Path) -> None:
    """The disk fails inside an append (a file size limit here, as a full disk would): the request is refused
    (retryable) and none of its bytes stay in the segment, whose rows before it are closed intact; the next
    append starts a new segment."""
    row, lines = _gc_input(_storm_lines(100), "disk")
    (tmp_path / "row").write_bytes(row)
    out = subprocess.run([sys.executable, "-c", _FAILING_DISK, str(tmp_path / "journal"), str(tmp_path / "row"),
                          str(lines)], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused: the OTLP journal cannot write"), out.stdout
    segments = sorted(p for p in (tmp_path / "journal").iterdir() if p.name != "lock")
    assert [p.suffix for p in segments] == [".ready", ".ready"]
    assert [whole_rows(p.read_bytes()) for p in segments] == [(lines, len(row))] * 2
    assert [p.stat().st_size for p in segments] == [len(row)] * 2  # nothing of the refused append is left


def test_the_open_segment_is_stored_once_appends_pause(stores: tuple[Settings, Store, Store], tmp_path: Path) -> None:
    """No segment size or age is reached (an hour), yet the lines of a pause are stored: once no append came
    for `idle_seconds`, the open segment is closed and stored; an hour-long idle would keep it open."""
    settings, _, store = stores
    data, lines = _gc_input(_storm_lines(60), "pause")
    for idle, stored in ((3600.0, False), (0.05, True)):
        journal, _ = _journal(settings, store, tmp_path / f"journal-{idle}", segment_seconds=3600.0,
                              idle_seconds=idle)
        journal.start()
        try:
            journal.append(data, lines)
            assert journal.wait_stored(3) is stored
        finally:
            journal.stop(30)  # stopping stores what is open in either case
    assert store.scalar(f"SELECT count() FROM {store.database}.gc_events") == 2 * lines
