"""The file command's own Python per byte, alone: `python -m bench.file_reader`.

Why: of the CPU the file command spends on its Python threads, only the reading of the input and the two counts the
fast path needs per batch (line ends, and " ms clock, " for the cheap test of a clean batch) are Fleetwatch's; the
rest is the engine planning each statement on the calling thread (`bench.cli_profile` splits the two). This times
that reading exactly as `files._ingest_raw` does it (`files.iter_raw_chunks` over each file, both counts per chunk,
the chunks kept until the file is done, as a batch keeps them), best of `--repeat`, over the bench's files
(bench.data), so a change to the reader can be measured apart from the engine's noise. CPU is this process's.
Since a plain file of at most one batch is read by the engine in place (`FastGctraceStream.feed_file`), this is the
reading of the files that are not: larger ones, gzip, stdin, and those that are not a clean batch.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench import data
from pipeline.sources import files


def read_like_the_command(paths: list[str]) -> tuple[int, int]:
    lines = clock = 0
    for path in paths:
        parts = []
        with files.open_binary(path) as binary:
            for chunk in files.iter_raw_chunks(binary, files.CHUNK_BYTES):
                parts.append(chunk)
                lines += chunk.count(b"\n")
                clock += chunk.count(b" ms clock, ")
        del parts
    return lines, clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--lines", type=int, default=100_000, help="gc lines per file")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="file-reader-"))
    try:
        paths = [str(p) for p in data.write_instance_files(tmp, args.files, args.lines)]
        total = args.files * args.lines
        runs = []
        for _ in range(args.repeat):
            cpu = time.process_time()
            lines, clock = read_like_the_command(paths)
            runs.append(time.process_time() - cpu)
            if lines != total or clock != total:
                raise RuntimeError(f"counted {lines} lines, {clock} clock lines for {total}")
        million = total / 1e6
        print(f"{files.__file__}: {total:,} lines, reading and counting {min(runs) / million:.3f} CPU s per M "
              f"(best of {args.repeat}; all: {' / '.join(f'{r / million:.3f}' for r in runs)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
