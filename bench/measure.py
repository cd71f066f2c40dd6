"""What one benchmark run measures, and how a worker process hands it back to the runner.

Each path runs in a process of its own (one embedded store path per process). The worker measures itself
with getrusage: CPU is user + system time of every thread in the process (the embedded ClickHouse engine's
threads included), peak RSS is the process's high-water mark. It prints one `BENCH-RESULT {json}` line.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass, field

RESULT_PREFIX = "BENCH-RESULT "


@dataclass
class Result:
    name: str
    units: int                  # lines or records that went in
    rows: int                   # rows counted in the store afterwards
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.units / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_s / self.units * 1e6 if self.units else 0.0

    def emit(self) -> None:
        print(RESULT_PREFIX + json.dumps(asdict(self)), flush=True)

    @classmethod
    def parse(cls, stdout: str) -> Result:
        for line in reversed(stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return cls(**json.loads(line[len(RESULT_PREFIX):]))
        raise RuntimeError("the worker printed no result")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class Stopwatch:
    """Wall and CPU time of a section of this process."""

    def __enter__(self) -> Stopwatch:
        self.wall0 = time.perf_counter()
        self.cpu0 = cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = cpu_seconds() - self.cpu0
