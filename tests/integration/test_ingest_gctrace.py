"""`fleetwatch ingest gctrace` end to end on the real engine: captured samples, a real Go program's stderr,
and the commands exactly as a user types them."""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.sources.files import ingest_command
from tests.conftest import DATA, VENV_BIN

SAMPLES = DATA / "go-runtime"


def _recent(hours: float = 1.0) -> datetime:
    """A start time inside the retention window (the TTL drops older rows on insert)."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


def _args(*paths: Path | str, start: datetime | None = None, instance: str = "", jobs: int = 1,
          service: str = "api") -> argparse.Namespace:
    return argparse.Namespace(
        paths=[str(p) for p in paths], service=service, instance=instance,
        start_time=start.strftime("%Y-%m-%dT%H:%M:%SZ") if start else None, jobs=jobs,
    )


def test_samples_plain_and_gzip_are_stored_with_their_values(settings, store, tmp_path, capsys) -> None:
    gz = tmp_path / "interleave.log.gz"
    gz.write_bytes(gzip.compress((SAMPLES / "go1.19.8-interleave.txt").read_bytes()))
    storm = SAMPLES / "go1.27.3-storm.txt"
    start = _recent()
    assert ingest_command(settings, _args(storm, gz, start=start)) == 0
    out = capsys.readouterr().out
    assert "go1.27.3-storm.txt: 1573 lines read, 302 gc events stored" in out
    assert "interleave.log.gz: 6499 lines read, 241 gc events stored" in out and "2 split lines repaired" in out

    db = settings.database
    got = store.rows(f"SELECT instance, count(), max(gc_num), uniqExact(gc_num), max(incarnation) "
                     f"FROM {db}.gc_events GROUP BY instance ORDER BY instance")
    assert got == [("go1.27.3-storm.txt", 302, 302, 302, 1), ("interleave.log.gz", 241, 241, 241, 1)]
    row = store.rows(
        f"SELECT toUnixTimestamp64Micro(ts), since_start_s, gc_cpu_pct, stw_sweep_term_ms, mark_ms, "
        f"stw_mark_term_ms, cpu_assist_ms, heap_start_mb, heap_end_mb, heap_live_mb, heap_goal_mb, stacks_mb, "
        f"globals_mb, procs, forced, leak_check, format, toUnixTimestamp64Micro(process_start), source "
        f"FROM {db}.gc_events WHERE instance = 'go1.27.3-storm.txt' AND gc_num = 100"
    )
    start_us = int(start.timestamp()) * 1_000_000
    assert row == [(start_us + 1_391_000, 1.391, 38, 0.056, 11.0, 0.04, 11.0, 54, 60, 54, 54, 0, 0, 2, 0, 0,
                    "go1.18", start_us, "file")]
    counts = dict(store.rows(
        f"SELECT 'scav', count() FROM {db}.scavenger_events UNION ALL "
        f"SELECT 'pacer', count() FROM {db}.pacer_events UNION ALL "
        f"SELECT 'logs', count() FROM {db}.otel_logs UNION ALL "
        f"SELECT 'quarantine', count() FROM {db}.quarantine"
    ))
    assert counts == {"scav": 302 + 241, "pacer": 907 + 483, "logs": 62 + 5534, "quarantine": 0}
    bodies = store.rows(f"SELECT Body FROM {db}.otel_logs WHERE Body LIKE 'app: tick allocated=90MiB%' LIMIT 1")
    assert bodies == [("app: tick allocated=90MiB goroutines=3",)]


def test_inputs_ingested_at_once_give_the_rows_of_one_at_a_time(settings, store, tmp_path, capsys) -> None:
    """--jobs 2 runs inputs side by side (clean files through the one-statement fast path, captures with
    application lines and restarts through the span path, one without a start time): every table holds the
    rows one input at a time gives, and the reports come in input order."""
    gc_lines = [line for line in (SAMPLES / "go1.27.3-storm.txt").read_text().splitlines() if line.startswith("gc ")]
    tails = [line.split("s ", 1)[1] for line in gc_lines]  # after "gc N @T"
    clean = tmp_path / "clean.log"  # renumbered: 3,000 plain gc lines in clock order
    clean.write_text("".join(f"gc {k + 1} @{k * 0.05:.3f}s {tails[k % len(tails)]}\n" for k in range(3_000)))
    restarted = tmp_path / "restarted.log"
    restarted.write_text("\n".join(gc_lines[:200] + gc_lines) + "\n")
    paths = [clean, SAMPLES / "go1.19.8-interleave.txt", restarted, SAMPLES / "go1.27.3-storm.txt"]
    start = _recent()
    assert ingest_command(settings, _args(*paths, start=start, jobs=2, service="together")) == 0
    together = capsys.readouterr().out.splitlines()
    assert ingest_command(settings, _args(*paths, start=start, jobs=1, service="in-turn")) == 0
    in_turn = capsys.readouterr().out.splitlines()
    assert together == in_turn and [line.split(":")[0] for line in together[:4]] == [str(p) for p in paths]
    db = settings.database
    # (the service names differ, and so does received_at: each command's own time)
    for table, service, differ in (("gc_events", "service", "received_at"), ("scavenger_events", "service",
                                   "received_at"), ("pacer_events", "service", "received_at"),
                                   ("otel_logs", "ServiceName", "ResourceAttributes"),
                                   ("quarantine", "service", "received_at")):
        both = {name: sorted(store.rows(f"SELECT * EXCEPT ({service}, {differ}) FROM {db}.{table} "
                                        f"WHERE {service} = {{s:String}}", {"s": name}), key=repr)
                for name in ("together", "in-turn")}
        assert both["together"] == both["in-turn"], table
    assert store.rows(f"SELECT instance, max(incarnation) FROM {db}.gc_events WHERE service = 'together' "
                      f"GROUP BY instance ORDER BY instance") == [
        ("clean.log", 1), ("go1.19.8-interleave.txt", 1), ("go1.27.3-storm.txt", 1), ("restarted.log", 2)]


def test_file_without_start_time_is_anchored_on_its_mtime(settings, store, tmp_path) -> None:
    log = tmp_path / "forced.log"
    shutil.copyfile(SAMPLES / "go1.27.3-forced.txt", log)
    mtime = _recent(0.5)
    os.utime(log, (mtime.timestamp(), mtime.timestamp()))
    assert ingest_command(settings, _args(log)) == 0
    last_end = store.scalar(
        f"SELECT toUnixTimestamp64Micro(ts) + toInt64(round((stw_sweep_term_ms + mark_ms + stw_mark_term_ms) "
        f"* 1000)) FROM {settings.database}.gc_events ORDER BY gc_num DESC LIMIT 1"
    )
    assert last_end == int(mtime.timestamp()) * 1_000_000
    assert store.scalar(f"SELECT countIf(forced) FROM {settings.database}.gc_events") == 20


def test_usage_errors_exit_2(settings, tmp_path, capsys) -> None:
    log = tmp_path / "a.log"
    log.write_text("GC forced\n")
    args = _args(log)
    args.start_time = "last tuesday"
    assert ingest_command(settings, args) == 2
    assert "--start-time 'last tuesday' is not an ISO 8601 time" in capsys.readouterr().err
    assert ingest_command(settings, _args(tmp_path / "missing.log")) == 2
    assert "no such file" in capsys.readouterr().err


def test_real_go_program_stderr_gives_exactly_numgc_rows(build_go, settings, store, tmp_path) -> None:
    binary = build_go(DATA / "go" / "gcstorm")
    stderr_path = tmp_path / "gcstorm.stderr"
    with stderr_path.open("wb") as err:
        proc = subprocess.run(
            [str(binary), "-n", "100000", "-logevery", "500"], stdout=subprocess.PIPE, stderr=err,
            env={**os.environ, "GODEBUG": "gctrace=1,gcpacertrace=1,scavtrace=1", "GOGC": "5"}, timeout=120,
        )
    assert proc.returncode == 0
    num_gc = int(proc.stdout.decode().strip())
    assert num_gc > 20
    assert ingest_command(settings, _args(stderr_path, start=_recent(), instance="gcstorm-1")) == 0
    db = settings.database
    assert store.rows(f"SELECT count(), uniqExact(gc_num), max(gc_num), min(gc_num) FROM {db}.gc_events") == [
        (num_gc, num_gc, num_gc, 1)]
    # Application output lands inside runtime lines at random. Every gc cycle is stored (above); a pacer or
    # scavenger line torn twice on a loaded machine may be left as a fragment, quarantined with its shape.
    torn = [r[0] for r in store.rows(f"SELECT reason FROM {db}.quarantine")]
    assert len(torn) <= 2 and all(r.startswith(("pacer line", "scavenger line")) for r in torn), torn
    assert store.scalar(f"SELECT countIf(forced) FROM {db}.gc_events WHERE gc_num = {num_gc}") == 1
    app_lines = store.scalar(f"SELECT count() FROM {db}.otel_logs WHERE Body LIKE 'app: round=%'")
    # An application line written into a torn fragment is kept inside that fragment's quarantine row.
    in_fragments = store.scalar(f"SELECT countIf(position(raw, 'app: round=') > 0) FROM {db}.quarantine")
    assert app_lines + in_fragments == 100000 // 500


def test_cli_as_a_user_types_it(tmp_path) -> None:
    """Subprocesses with their own embedded store path (one chdb path per process)."""
    shutil.copyfile(SAMPLES / "go1.19.8-storm.txt", tmp_path / "app.log")
    env = {**os.environ, "FLEETWATCH_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'fw'}"}
    fleetwatch = str(VENV_BIN / "fleetwatch")
    start = _recent().strftime("%Y-%m-%dT%H:%M:%SZ")
    ingest = subprocess.run(
        [fleetwatch, "ingest", "gctrace", "app.log", "--service", "api", "--start-time", start],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "app.log: 2092 lines read, 509 gc events stored" in ingest.stdout and "0 quarantined" in ingest.stdout
    # The same capture again, gzipped, through stdin.
    piped = subprocess.run(
        [fleetwatch, "ingest", "gctrace", "-", "--service", "api", "--instance", "piped"],
        cwd=tmp_path, env=env, input=gzip.compress((tmp_path / "app.log").read_bytes()), capture_output=True,
        timeout=180,
    )
    assert piped.returncode == 0, piped.stderr
    assert b"stdin: 2092 lines read, 509 gc events stored" in piped.stdout
    query = subprocess.run(
        [fleetwatch, "sql", "select count(), max(gc_num) from fleetwatch.gc_events", "--format", "csv"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert query.returncode == 0, query.stderr
    assert query.stdout.strip().splitlines()[-1] == "1018,509"
    bad = subprocess.run([fleetwatch, "ingest", "gctrace", "app.log", "--start-time", "2026-13-45"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not an ISO 8601 time" in bad.stderr


@pytest.mark.parametrize("name", ["go1.26.6-leak-short.txt"])
def test_leak_check_cycles_are_flagged(settings, store, name) -> None:
    assert ingest_command(settings, _args(SAMPLES / name, start=_recent())) == 0
    got = store.rows(f"SELECT gc_num, forced, leak_check, format FROM {settings.database}.gc_events "
                     f"WHERE leak_check ORDER BY gc_num")
    assert got == [(5, 1, 1, "go1.26"), (6, 1, 1, "go1.26")]


def test_store_errors_exit_1(tmp_path, capsys) -> None:
    from pipeline.config import load_settings
    from tests.net import free_port

    log = tmp_path / "a.log"
    log.write_text("GC forced\n")
    unreachable = load_settings(clickhouse_dsn=f"http://default:@127.0.0.1:{free_port()}", database="fw")
    assert ingest_command(unreachable, _args(log, start=_recent())) == 1
    assert "store error" in capsys.readouterr().err
