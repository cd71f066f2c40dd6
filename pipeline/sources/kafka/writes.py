"""Partition batches written on a few threads while the consumer keeps fetching.

Why: a batch's write is mostly the engine's work (chdb runs a statement without holding the GIL), and the
consumer's own work (fetching, decoding records) is Python. Done one after the other on one thread, one core
waits while the other works. Here each due batch is handed to a small pool: batches of different partitions are
written side by side and the next batch is fetched meanwhile, so both cores work.

The exactly-once model does not change (delivery.py): a write is the whole `claim plan -> write rows` of one
batch, at most one per partition at a time (so a partition's batches are written in order), and the consumer
commits on its own thread only after the write returned, exactly as when it wrote the batch itself. A partition
revoked during a write has its outcome dropped; the rows may be stored, and whoever owns the partition next
replays the plan under the same tokens, as after a crash. A partition is not written again while an older write
of it (even one dropped) is still running, so one process never writes one batch twice at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass
class Write(Generic[T]):
    """One batch being written: what the consumer needs to finish it, and the running job."""

    owner: object  # the partition state that submitted it: a dropped state's outcome is not applied
    start: int
    end: int
    count: int
    future: Future[T]


class PartitionWrites(Generic[K, T]):
    """At most one running write per partition, on `threads` threads (0: each job runs at submit, inline)."""

    def __init__(self, threads: int, name: str = "fleetwatch-kafka-write") -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name) if threads > 0 else None
        self._running: dict[K, Write[T]] = {}

    def busy(self, key: K) -> bool:
        return key in self._running

    def running(self) -> int:
        return len(self._running)

    def submit(self, key: K, owner: object, start: int, end: int, count: int, job: Callable[[], T]) -> Write[T]:
        if key in self._running:
            raise RuntimeError(f"{key} is already being written")
        if self._pool is None:
            future: Future[T] = Future()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the consumer as a failed write, like a pool's future
                future.set_exception(exc)
        else:
            future = self._pool.submit(job)
        write = Write(owner, start, end, count, future)
        self._running[key] = write
        return write

    def finished(self) -> list[tuple[K, Write[T]]]:
        """The writes that are done, removed from the running set, in submission order."""
        done = [(key, w) for key, w in self._running.items() if w.future.done()]
        for key, _ in done:
            del self._running[key]
        return done

    def wait_all(self, timeout: float | None) -> None:
        futures = [w.future for w in self._running.values()]
        if futures:
            wait(futures, timeout=timeout)

    def close(self) -> None:
        """Stop the threads once the running writes have returned (nothing is cancelled mid-statement)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
