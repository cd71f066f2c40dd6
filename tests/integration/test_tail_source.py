"""The file source follows container log files made from real Go captures, through partial records,
rotation in mid-line (rename and copytruncate) and restarts, into the real embedded ClickHouse engine.

The reference for every count is the shared line normalizer over the capture's plain lines in one call:
whatever the container runtime did to the lines on disk, the rows must be the same.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.config import FilesSettings, Settings
from pipeline.normalize.gctrace import normalize_lines
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources.tail.checkpoints import CheckpointStore
from pipeline.sources.tail.tailer import Tailer
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings
from tests.containerlogs import cri_records, docker_records

pytestmark = pytest.mark.integration

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "go-runtime" / "go1.27.3-interleave.txt"
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "quarantine")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reference_counts(lines: list[str]) -> dict[str, int]:
    rows = Rows()
    normalize_lines(lines, observed_ns=0, service="s", instance="i", source="file",
                    received_at=datetime.now(UTC), rows=rows)
    return {t: rows.count(t) for t in TABLES}


def stored_counts(store: Store, db: str) -> dict[str, int]:
    return {t: int(store.scalar(f"SELECT count() FROM {db}.{t}")) for t in TABLES}


def make_tailer(store: Store, settings: Settings, paths: list[str], clock: Clock) -> Tailer:
    checkpoints = CheckpointStore(store, settings.sql_dir, context_from_settings(settings), "node-a")
    files = FilesSettings(paths=paths, idle_flush_seconds=1.0)
    return Tailer(Sink(store), checkpoints, files, clock=clock)


def drain(tailer: Tailer, clock: Clock) -> None:
    """Poll while growing, then let the files go idle so held-back lines are processed too."""
    tailer.poll_once()
    clock.now += 5
    tailer.poll_once()
    tailer.poll_once()


def append(path: Path, records: list[str]) -> None:
    with path.open("a") as fh:
        fh.write("".join(r + "\n" for r in records))


def test_cri_file_with_partials_rotated_in_mid_line(store: Store, settings: Settings, tmp_path: Path) -> None:
    lines = CAPTURE.read_text().split("\n")[:-1]
    records = cri_records(lines, split_every=4)
    pod_dir = tmp_path / "var/log/pods/prod_api-7d9f_0c1d2e3f/api"
    pod_dir.mkdir(parents=True)
    live = pod_dir / "0.log"
    clock = Clock()
    tailer = make_tailer(store, settings, [str(tmp_path / "var/log/pods/*/*/*.log")], clock)

    # Rotation right after the first P piece of a line written in pieces: the F piece opens the new file.
    cut = next(i for i, r in enumerate(records) if i > len(records) // 2 and " stderr P " in r) + 1
    append(live, records[: cut // 2])
    tailer.poll_once()
    append(live, records[cut // 2 : cut])
    tailer.poll_once()
    live.rename(pod_dir / "0.log.20261201-100000")
    append(live, records[cut:])
    for _ in range(3):
        drain(tailer, clock)

    assert stored_counts(store, settings.database) == reference_counts(lines)
    ident = store.rows(f"SELECT DISTINCT service, instance FROM {settings.database}.gc_events")
    assert ident == [("api", "api-7d9f")]
    ns = store.scalar(f"SELECT any(ResourceAttributes['k8s.namespace.name']) FROM {settings.database}.otel_logs")
    assert ns == "prod"
    # The records' own times are the observed times: every stored line lies inside the capture's span.
    lo, hi = store.rows(f"SELECT min(Timestamp), max(Timestamp) FROM {settings.database}.otel_logs")[0]
    assert lo.year == 2026 and lo.month == 12 and (hi - lo).total_seconds() < 10

    # A restart (a new tailer on the same store) resumes from the checkpoints: nothing is read twice.
    before = stored_counts(store, settings.database)
    again = make_tailer(store, settings, [str(tmp_path / "var/log/pods/*/*/*.log")], clock)
    drain(again, clock)
    assert stored_counts(store, settings.database) == before
    tailer.close()
    again.close()


def test_docker_json_file_copytruncate_and_restart(store: Store, settings: Settings, tmp_path: Path) -> None:
    lines = CAPTURE.read_text().split("\n")[:-1]
    first, second = lines[:1200], lines[1200:]
    path = tmp_path / "containers" / "api.log"
    path.parent.mkdir()
    clock = Clock()
    tailer = make_tailer(store, settings, [str(path)], clock)
    append(path, docker_records(first, split_every=3))
    drain(tailer, clock)
    assert stored_counts(store, settings.database) == reference_counts(first)

    # copytruncate: the same inode is emptied in place and written again from the start.
    with path.open("r+") as fh:
        fh.truncate(0)
    append(path, docker_records(second, split_every=3, first_index=len(first)))
    tailer.close()
    restarted = make_tailer(store, settings, [str(path)], clock)
    drain(restarted, clock)
    expected = {t: a + b for (t, a), b in zip(reference_counts(first).items(), reference_counts(second).values(),
                                              strict=True)}
    assert stored_counts(store, settings.database) == expected
    restarted.close()


def test_plain_files_trailing_blanks_and_a_bad_file_next_to_a_good_one(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    lines = CAPTURE.read_text().split("\n")[:-1][:600]
    good = tmp_path / "good.log"
    good.write_text("".join(line + " \t\r\n" for line in lines))
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"\xff\xfe\x00garbage\n" * 10 + b"gc 1 @0.1s 0%: 0.1+" + b"9" * 40 + b" ms clock\n")
    clock = Clock()
    tailer = make_tailer(store, settings, [str(tmp_path / "*.log")], clock)
    drain(tailer, clock)
    got = store.rows(f"SELECT service, count() FROM {settings.database}.gc_events GROUP BY service")
    assert got == [("good", reference_counts(lines)["gc_events"])]
    reasons = store.rows(f"SELECT location FROM {settings.database}.quarantine WHERE service = 'bad'")
    assert reasons and all(str(bad) in r[0] for r in reasons)
    tailer.close()
    os.remove(bad)


def test_ingest_follow_tails_one_file_until_stopped(store: Store, settings: Settings, tmp_path: Path) -> None:
    """`fleetwatch ingest gctrace --follow FILE` (its command function): the lines written while it runs are
    stored under the given service, and a second run resumes from the checkpoint."""
    import threading
    import time

    from pipeline.sources.tail import follow_command

    lines = CAPTURE.read_text().split("\n")[:-1]
    path = tmp_path / "app.log"
    path.write_text("")
    fast = settings.model_copy(update={"files": FilesSettings(poll_interval_seconds=0.05, idle_flush_seconds=0.2)})

    def follow(stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=follow_command, args=(fast, str(path)),
                                  kwargs={"service": "api", "instance": "pod-1", "stop": stop})
        thread.start()
        return thread

    def wait_gc(expected: int) -> None:
        deadline = time.monotonic() + 60
        while stored_counts(store, settings.database)["gc_events"] < expected:
            assert time.monotonic() < deadline, stored_counts(store, settings.database)
            time.sleep(0.05)

    stop = threading.Event()
    thread = follow(stop)
    append(path, lines[:1500])
    wait_gc(reference_counts(lines[:1500])["gc_events"])
    stop.set()
    thread.join(30)
    stop = threading.Event()
    thread = follow(stop)
    append(path, lines[1500:])
    wait_gc(reference_counts(lines)["gc_events"])
    stop.set()
    thread.join(30)
    assert stored_counts(store, settings.database)["gc_events"] == reference_counts(lines)["gc_events"]
    ident = store.rows(f"SELECT DISTINCT service, instance FROM {settings.database}.gc_events")
    assert ident == [("api", "pod-1")]


def test_a_line_longer_than_the_limit_is_cut_and_quarantined(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    gc = CAPTURE.read_text().split("\n")[:-1]
    gc_lines = [line for line in gc if line.startswith("gc ")][:3]
    path.write_text(gc_lines[0] + "\n" + "x" * 5000 + "\n" + "\n".join(gc_lines[1:]) + "\n")
    clock = Clock()
    checkpoints = CheckpointStore(store, settings.sql_dir, context_from_settings(settings), "node-a")
    tailer = Tailer(Sink(store), checkpoints, FilesSettings(paths=[str(path)], max_line_bytes=1024), clock=clock)
    drain(tailer, clock)
    tailer.close()
    assert stored_counts(store, settings.database)["gc_events"] == 3
    # Cut every 1024 bytes: each full piece is quarantined, the rest (5000 - 4 x 1024) is read as a line.
    reasons = store.rows(f"SELECT reason, raw_bytes FROM {settings.database}.quarantine")
    assert reasons == [("line longer than 1024 bytes (files.max_line_bytes)", 1024)] * 4
    rest = store.rows(f"SELECT length(Body) FROM {settings.database}.otel_logs WHERE Body LIKE 'xxx%'")
    assert rest == [(5000 - 4 * 1024,)]
