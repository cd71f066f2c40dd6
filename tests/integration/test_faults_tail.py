"""`fleetwatch run` tailing growing and rotating files is SIGKILLed twice and restarted on the same store:
every gc cycle is stored exactly once (count == distinct (instance, gc_num) == what was written).

Files: a CRI pod log (rotated by rename in mid-line, between the P and F pieces of a line), a Docker
json-file log (copytruncate) and a plain stderr capture. Waits are on row counts read through the running
process's query endpoint, never on sleeps or log text.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from tests.containerlogs import cri_records, docker_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1] / "data" / "go-runtime"


def count(proc, sql: str) -> int:
    req = urllib.request.Request(proc.query_url + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.read().decode().strip() or 0)


def wait_count(proc, sql: str, expected: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    got = -1
    while time.monotonic() < deadline:
        assert proc.alive(), proc.log()[-4000:]
        got = count(proc, sql)
        if got >= expected:
            return got
        time.sleep(0.1)
    req = urllib.request.Request(proc.query_url + "/", method="POST", data=(
        b"SELECT service, instance, count(), uniqExact(gc_num), min(gc_num), max(gc_num) FROM fleetwatch.gc_events "
        b"GROUP BY service, instance FORMAT TSV"))
    with urllib.request.urlopen(req, timeout=30) as resp:
        detail = resp.read().decode()
    raise AssertionError(f"{sql}: {got} rows, expected {expected}\n{detail}\n{proc.log()[-4000:]}")


def append(path: Path, records: list[str]) -> None:
    with path.open("a") as fh:
        fh.write("".join(r + "\n" for r in records))


def gc_lines(name: str) -> list[str]:
    return DATA.joinpath(name).read_text().split("\n")[:-1]


def test_sigkill_twice_while_tailing_growing_and_rotating_files(restartable, tmp_path: Path) -> None:
    logs = tmp_path / "var" / "log"
    pod_dir = logs / "pods" / "prod_storm-0_1111" / "storm"
    pod_dir.mkdir(parents=True)
    docker_dir = logs / "docker"
    docker_dir.mkdir()
    cri_src = cri_records(gc_lines("go1.19.8-storm-gogc1.txt"), split_every=3)
    docker_lines = gc_lines("go1.27.3-storm-gogc1.txt")
    plain_lines = gc_lines("go1.27.3-storm.txt")
    expected = sum(1 for src in (gc_lines("go1.19.8-storm-gogc1.txt"), docker_lines, plain_lines)
                   for line in src if " ms clock, " in line)
    paths = [str(logs / "pods" / "*" / "*" / "*.log"), str(docker_dir / "*.log"), str(logs / "plain" / "*.log")]
    (logs / "plain").mkdir()
    proc = restartable(query=True, env={"FLEETWATCH_FILES__PATHS": __import__("json").dumps(paths),
                                        "FLEETWATCH_FILES__IDLE_FLUSH_SECONDS": "0.3",
                                        "FLEETWATCH_FILES__POLL_INTERVAL_SECONDS": "0.05"})
    gc_sql = "SELECT count() FROM fleetwatch.gc_events"
    cri, docker, plain = pod_dir / "0.log", docker_dir / "api.log", logs / "plain" / "worker.log"

    def chunks(seq: list[str], n: int) -> list[list[str]]:
        size = -(-len(seq) // n)
        return [seq[i:i + size] for i in range(0, len(seq), size)]

    cri_parts, docker_parts, plain_parts = chunks(cri_src, 6), chunks(docker_lines, 6), chunks(plain_lines, 6)
    proc.start()
    # Round 1: grow all three, then crash right after more data lands (mid-batch, mid-plan).
    append(cri, cri_parts[0])
    append(docker, docker_records(docker_parts[0]))
    append(plain, plain_parts[0])
    wait_count(proc, gc_sql, 1)
    append(cri, cri_parts[1])
    append(plain, plain_parts[1])
    proc.kill()

    # While it is down: the pod log is rotated by rename between the P and F pieces of one line.
    part = cri_parts[2]
    cut = next(i for i, r in enumerate(part) if " stderr P " in r) + 1
    append(cri, part[:cut])
    cri.rename(pod_dir / "0.log.20261201-100000")
    append(cri, part[cut:])
    proc.start()
    append(docker, docker_records(docker_parts[1], first_index=10_000))
    # copytruncate needs the file read first (the copy is not followed): wait until docker's rows are in.
    docker_so_far = sum(1 for line in docker_lines[: sum(map(len, docker_parts[:2]))] if " ms clock, " in line)
    wait_count(proc, "SELECT count() FROM fleetwatch.gc_events WHERE service = 'api'", docker_so_far)
    with docker.open("r+") as fh:
        fh.truncate(0)
    append(docker, docker_records(docker_parts[2], first_index=20_000))
    append(plain, plain_parts[2])
    append(cri, cri_parts[3])
    proc.kill()

    # Round 3: restart, write the rest (another rename rotation of the plain file), wait for every cycle. The
    # rename waits until the restarted tailer has read the plain file up to what it holds: a file renamed out of
    # the watched pattern before the tailer reopened it after a crash cannot be found again (its name is gone).
    proc.start()
    plain_so_far = sum(1 for line in plain_lines[: sum(map(len, plain_parts[:3]))] if " ms clock, " in line)
    wait_count(proc, "SELECT count() FROM fleetwatch.gc_events WHERE service = 'worker'", plain_so_far)
    plain.rename(logs / "plain" / "worker.log.1")
    for rest in plain_parts[3:]:
        append(plain, rest)
    for rest in cri_parts[4:]:
        append(cri, rest)
    for i, rest in enumerate(docker_parts[3:]):
        append(docker, docker_records(rest, first_index=30_000 + 1000 * i))
    wait_count(proc, gc_sql, expected)
    assert proc.terminate() == 0, proc.log()[-4000:]
    got = proc.sql_many({
        "gc": "SELECT count() AS n, uniqExact(service, instance, gc_num) AS u FROM fleetwatch.gc_events",
        "by": "SELECT service, instance, count() AS n FROM fleetwatch.gc_events GROUP BY service, instance "
              "ORDER BY service",
        "q": "SELECT count() AS n FROM fleetwatch.quarantine",
    })
    assert got["gc"] == [{"n": expected, "u": expected}], got
    assert {r["service"] for r in got["by"]} == {"storm", "api", "worker"}
    assert got["q"] == [{"n": 0}], got
