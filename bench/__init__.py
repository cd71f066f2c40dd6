"""Throughput benchmarks: every ingest path end to end into the embedded store, against two references.

`python -m bench.run --quick|--full` (or `make bench-quick` / `make bench`); docs/benchmarks.md explains
the method and holds the figures.
"""
