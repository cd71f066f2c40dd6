"""Each job's timeline in `fleetwatch ingest gctrace`: `python -m bench.file_timeline`.

Why: the file command's rate is set by whether its jobs keep both cores busy with engine statements, which neither
its CPU per million lines nor its CPU by thread shows: a job reading and counting its next file while the other
job's statement has already ended, two jobs taking turns on the GIL before their statements, the last file's
statement running alone, the start before the first statement. This runs the command as `bench.cli_profile` does
(pipeline.cli.main in this process, the store opened and migrated before the clock, `--jobs`) and prints, per job
thread, when each input started and ended and when each engine call ran (`Store._call`, the statement's input
file included for `Store.insert_select_lines`), then per job the time between one engine call's end and the next
one's start (the job's own Python: reading, counting, bookkeeping), the start-up before the first call and the
time the last job ran alone. Wrapping those three names is all it changes; nothing of the product does.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cli_profile import prepared_command, quiet_stdout
from pipeline.store.client import Store


@dataclass
class Timeline:
    """(wall seconds since the start, thread name, event, detail), appended by the wrapped calls."""

    events: list[tuple[float, str, str, str]] = field(default_factory=list)
    t0: float = 0.0

    def note(self, event: str, detail: str = "") -> None:
        self.events.append((time.perf_counter() - self.t0, threading.current_thread().name, event, detail))

    @contextmanager
    def watching(self) -> Iterator[Timeline]:
        from pipeline.sources import files

        timeline = self
        call, ingest = Store._call, files.ingest_stream

        def timed_call(store: Store, fn: Any) -> Any:
            timeline.note("call+")
            try:
                return call(store, fn)
            finally:
                timeline.note("call-")

        def timed_ingest(store: Store, source: Any, **kwargs: Any) -> Any:
            timeline.note("input+", Path(source.name).name)
            try:
                return ingest(store, source, **kwargs)
            finally:
                timeline.note("input-", Path(source.name).name)

        Store._call = timed_call  # type: ignore[method-assign]
        files.ingest_stream = timed_ingest  # type: ignore[assignment]
        self.t0 = time.perf_counter()
        try:
            yield self
        finally:
            Store._call = call  # type: ignore[method-assign]
            files.ingest_stream = ingest  # type: ignore[assignment]

    def summary(self) -> dict[str, float]:
        """Milliseconds: `first call` (the first job's first engine call), `between calls` per job (summed),
        `alone` (from the first job's last event to the end of the last job's)."""
        jobs: dict[str, list[tuple[float, str]]] = {}
        for at, thread, event, _ in self.events:
            if thread != "MainThread":
                jobs.setdefault(thread, []).append((at, event))
        out: dict[str, float] = {}
        if not jobs:
            return out
        out["first call"] = 1000 * min(at for evs in jobs.values() for at, event in evs if event == "call+")
        for thread, evs in sorted(jobs.items()):
            gap, last_end = 0.0, None
            for at, event in evs:
                if event == "call-":
                    last_end = at
                elif event == "call+" and last_end is not None:
                    gap += at - last_end
            out[f"between calls, {thread}"] = 1000 * gap
        ends = sorted(evs[-1][0] for evs in jobs.values())
        out["alone"] = 1000 * (ends[-1] - ends[0])
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--lines", type=int, default=100_000, help="gc lines per file")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--events", action="store_true", help="print every event, not only the inputs")
    args = parser.parse_args(argv)
    from pipeline import cli

    with prepared_command("file-timeline-", args.files, args.lines, args.jobs) as (_store, argv_cli):
        cpu = time.process_time()
        with quiet_stdout(), Timeline().watching() as timeline:
            code = cli.main(argv_cli)
            timeline.note("end")
        cpu = time.process_time() - cpu
        if code != 0:
            raise RuntimeError(f"exit code {code}")
        wall = timeline.events[-1][0]
        lines = args.files * args.lines
        print(f"{lines:,} lines in {args.files} files, --jobs {args.jobs}: {wall:.2f} s wall, {lines / wall:,.0f} "
              f"lines/s, {cpu / lines * 1e6:.2f} CPU s per M; load average {os.getloadavg()[0]:.1f}")
        for at, thread, event, detail in timeline.events:
            if args.events or event.startswith("input") or event == "end":
                print(f"  {at * 1000:8.1f} ms  {thread:10s} {event:7s} {detail}")
        print("  " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in timeline.summary().items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
