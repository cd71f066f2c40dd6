"""`python -m bench.otlp_before_after [--pairs N] [--old COMMIT] [--full]`: the OTLP/HTTP and OTLP/gRPC rows of the
current tree against the commit before the serving layer (9456c88, the stdlib OTLP/HTTP server), in one run.

The old commit is checked out in a temporary `git worktree` and both trees run the same quick OTLP rows
(`python -m bench.run --quick --only otlp_http,otlp_grpc --no-record`, 1,000-record log requests) in
interleaved pairs, the order alternating, so a neighbour's load on a shared machine falls on both alike.
`--full` runs the full sizes instead (1M records per row rather than 100k): about ten times longer, but
one-time costs inside the measured window (clickhouse-connect importing pandas on the first insert, about
0.6 CPU s; the serving stack's first-request imports) weigh a tenth as much on the CPU per record.
Printed: per tree and transport, the median records/s and CPU seconds per million records over the pairs,
and every pair's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = {"OTLP/HTTP protobuf": "http", "OTLP/gRPC": "grpc"}


# A run whose worker crashed is repeated (at most this many attempts in all): the old commit's gRPC worker
# sometimes dies with SIGSEGV while stopping, after its figures were taken but before it printed them.
ATTEMPTS = 3


def _run(tree: Path, size: str = "--quick") -> dict[str, dict[str, float]]:
    """One OTLP run in `tree`; {transport: {records_per_s, cpu_s_per_m}} parsed from its table."""
    for attempt in range(1, ATTEMPTS + 1):
        proc = subprocess.run([sys.executable, "-m", "bench.run", size, "--only", "otlp_http,otlp_grpc",
                               "--no-record"], cwd=tree, capture_output=True, text=True, timeout=1800)
        if proc.returncode == 0:
            break
        print(f"run in {tree} failed (attempt {attempt} of {ATTEMPTS}): {proc.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr, flush=True)
    else:
        raise RuntimeError(f"bench in {tree} failed {ATTEMPTS} times:\n{proc.stderr[-3000:]}")
    out: dict[str, dict[str, float]] = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        transport = next((t for label, t in ROWS.items() if cells and cells[0].startswith(label)), None)
        if transport is None or len(cells) < 6:
            continue
        rate = float(cells[4].split()[0].replace(",", ""))
        out[transport] = {"records_per_s": rate, "cpu_s_per_m": float(cells[5].replace(",", ""))}
    if set(out) != set(ROWS.values()):
        raise RuntimeError(f"no OTLP rows in the output of {tree}:\n{proc.stdout[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_before_after", description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--old", default="9456c88", help="the commit before the serving layer")
    parser.add_argument("--full", action="store_true", help="full sizes (1M records per row) instead of quick")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory(prefix="fw-before-") as tmp:
        old_tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(old_tree), args.old], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for pair in range(args.pairs):
                order = [("before", old_tree), ("now", ROOT)]
                for name, tree in order if pair % 2 == 0 else reversed(order):
                    runs[name].append(_run(tree, "--full" if args.full else "--quick"))
                    print(f"pair {pair + 1} {name}: {json.dumps(runs[name][-1])}", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False,
                           capture_output=True)
    summary = {
        name: {t: {key: statistics.median(r[t][key] for r in results) for key in ("records_per_s", "cpu_s_per_m")}
               for t in ROWS.values()}
        for name, results in runs.items()
    }
    print(json.dumps({"old": args.old, "pairs": args.pairs, "size": "full" if args.full else "quick",
                      "median": summary, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
