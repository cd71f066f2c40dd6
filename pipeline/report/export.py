"""`fleetwatch pprof export`: a stored profile back out, byte for byte, for `go tool pprof` or Pyroscope.

profile_raw keeps each snapshot exactly as it was received (gzipped protobuf from a scrape stays gzipped
protobuf), so what an engineer opens is exactly what Fleetwatch saw. The snapshot chosen is the instance's
latest of that type at or before `--at`. Works while `fleetwatch run` holds the embedded store (reads go
through its query endpoint, like `fleetwatch sql`).
"""

from __future__ import annotations

import argparse
import base64
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import Settings
from pipeline.isotime import parse_iso_ns
from pipeline.sqlfiles import load_statement
from pipeline.store.migrate import context_from_settings
from pipeline.store.query import open_reader


@dataclass(frozen=True)
class Exported:
    ts: datetime
    snapshot_id: str
    format: str
    data: bytes


def find_snapshot(settings: Settings, *, service: str, instance: str, profile_type: str,
                  at: datetime) -> Exported | None:
    sql = load_statement(settings.sql_dir, "queries/pprof_export.sql", context_from_settings(settings))
    store = open_reader(settings)
    try:
        rows = store.dicts(sql, {"service": service, "instance": instance, "profile_type": profile_type,
                                 "at": at})
    finally:
        store.close()
    if not rows:
        return None
    row = rows[0]
    return Exported(ts=row["ts"], snapshot_id=row["snapshot_id"], format=row["format"],
                    data=base64.b64decode(row["data_base64"]))


def export_command(settings: Settings, args: argparse.Namespace) -> int:
    """Exit codes: 0 written, 1 store error or no snapshot, 2 bad arguments."""
    try:
        at_ns = parse_iso_ns(args.at, "--at") if args.at else None
    except ValueError as exc:
        print(f"fleetwatch: {exc}", file=sys.stderr)
        return 2
    at = datetime.fromtimestamp(at_ns / 1e9, tz=UTC) if at_ns is not None else datetime.now(UTC)
    found = find_snapshot(settings, service=args.service, instance=args.instance, profile_type=args.type, at=at)
    if found is None:
        print(f"fleetwatch: no {args.type} profile of {args.service}/{args.instance} at or before "
              f"{at.isoformat()}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.buffer.write(found.data)
        sys.stdout.buffer.flush()
    else:
        Path(args.output).write_bytes(found.data)
    print(f"{args.output}: {args.type} profile ({found.format}) of {args.service}/{args.instance} taken "
          f"{found.ts.isoformat()}, snapshot {found.snapshot_id}, {len(found.data)} bytes", file=sys.stderr)
    return 0
