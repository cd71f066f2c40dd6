"""`fleetwatch ingest pprof PATH...`: saved profiles and goroutine dumps into the store.

Takes what `go tool pprof` and `curl .../debug/pprof/...` save (protobuf, gzipped or not), `debug=1` and
`debug=2` text and tracebacks copied from a crashed process's stderr. The format and, where the content
says, the profile type are sniffed; `--type` settles what the content cannot (a debug=2 dump from
/debug/pprof/goroutineleak, allocs vs heap). The time is `--time`, else the profile's own, else the file's
modification time (when it was saved). Each file is one write with the snapshot's dedup token, so ingesting
the same file twice stores it once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import Settings
from pipeline.isotime import parse_iso_ns
from pipeline.normalize.pprof import (
    PROFILE_TYPES,
    SIGNAL,
    PprofLimits,
    ProfileMeta,
    ProfileResult,
    normalize_profile,
)
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.store.client import Store, StoreError, StoreUnavailable
from pipeline.store.migrate import MigrationError, context_from_settings, migrate


def limits_from_settings(settings: Settings) -> PprofLimits:
    p = settings.pprof
    return PprofLimits(max_input_bytes=p.max_input_bytes, max_decoded_bytes=p.max_decoded_bytes,
                       max_samples=p.max_samples)


def read_limited(path: Path, limit: int) -> bytes:
    """At most `limit` + 1 bytes: enough for the normalizer to see that a file is over the limit."""
    with path.open("rb") as f:
        return f.read(limit + 1)


def ingest_file(sink: Sink, path: Path, *, service: str, instance: str, ts_ns: int | None, type_hint: str | None,
                limits: PprofLimits) -> ProfileResult:
    data = read_limited(path, limits.max_input_bytes)
    now = datetime.now(UTC)
    stat = os.stat(path)
    meta = ProfileMeta(service=service, instance=instance, source="file", observed_ns=stat.st_mtime_ns,
                       received_at=now, ts_ns=ts_ns, type_hint=type_hint, location=str(path))
    rows = Rows()
    if len(data) > limits.max_input_bytes:
        # Only the first limit + 1 bytes were read: quarantine those, with the file's real size.
        reason = f"file of {stat.st_size} bytes exceeds pprof.max_input_bytes ({limits.max_input_bytes})"
        rows.quarantine(source="file", signal=SIGNAL, reason=reason, raw=data, service=service, instance=instance,
                        location=str(path), received_at=now)
        result = ProfileResult(error=reason, profile_type=type_hint or "")
    else:
        result = normalize_profile(data, meta, rows, limits)
    token = result.snapshot_id or f"rejected/{hashlib.sha256(data).hexdigest()[:32]}"
    sink.write(rows, token=f"pprof/{token}")
    return result


def ingest_pprof_command(settings: Settings, args: argparse.Namespace) -> int:
    """Exit codes: 0 done (quarantined files are reported, not fatal), 1 the store failed, 2 bad arguments."""
    try:
        ts_ns = parse_iso_ns(args.time) if args.time else None
    except ValueError as exc:
        print(f"fleetwatch: {exc}", file=sys.stderr)
        return 2
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"fleetwatch: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.type is not None and args.type not in PROFILE_TYPES:
        print(f"fleetwatch: --type must be one of {', '.join(PROFILE_TYPES)}", file=sys.stderr)
        return 2
    limits = limits_from_settings(settings)
    store = Store.from_settings(settings)
    try:
        migrate(store, settings.sql_dir, context_from_settings(settings))
        sink = Sink(store)
        for path in paths:
            result = ingest_file(sink, path, service=args.service, instance=args.instance or path.name,
                                 ts_ns=ts_ns, type_hint=args.type, limits=limits)
            if result.ok:
                print(f"{path}: {result.profile_type} profile ({result.format}), snapshot {result.snapshot_id}: "
                      f"{result.goroutines} goroutines, {result.stacks} stacks, {result.samples} samples", flush=True)
            else:
                print(f"{path}: quarantined: {result.error}", flush=True)
        return 0
    except (StoreError, StoreUnavailable, MigrationError) as exc:
        print(f"fleetwatch: store error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
