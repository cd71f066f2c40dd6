"""pipeline/sources/kafka/writes.py: batches of different partitions are written at the same time, a partition's
never two at once, and a write's failure reaches the consumer as the failed write."""

from __future__ import annotations

import threading

import pytest

from pipeline.sources.kafka.writes import PartitionWrites


def test_two_partitions_are_written_at_the_same_time_and_one_partition_once_at_a_time() -> None:
    writes: PartitionWrites[str, str] = PartitionWrites(2)
    started = {"p0": threading.Event(), "p1": threading.Event()}
    release = threading.Event()

    def job(key: str) -> str:
        started[key].set()
        assert release.wait(10)
        return key

    try:
        writes.submit("p0", None, 0, 10, 10, lambda: job("p0"))
        writes.submit("p1", None, 0, 7, 7, lambda: job("p1"))
        # Both jobs run before either may finish: only possible side by side.
        assert started["p0"].wait(10) and started["p1"].wait(10)
        assert writes.busy("p0") and writes.running() == 2
        with pytest.raises(RuntimeError):
            writes.submit("p0", None, 10, 20, 10, lambda: "again")
        assert writes.finished() == []
        release.set()
        writes.wait_all(10)
        done = writes.finished()
        assert [(key, w.end, w.future.result()) for key, w in done] == [("p0", 10, "p0"), ("p1", 7, "p1")]
        assert not writes.busy("p0") and writes.running() == 0
    finally:
        release.set()
        writes.close()


def test_without_threads_a_write_runs_at_submit_and_its_failure_is_the_outcome() -> None:
    writes: PartitionWrites[str, int] = PartitionWrites(0)
    caller = threading.get_ident()
    write = writes.submit("p0", "owner", 5, 9, 4, lambda: threading.get_ident())
    assert write.future.done() and write.future.result() == caller and write.owner == "owner"

    def fail() -> int:
        raise OSError("store down")

    writes.finished()
    failed = writes.submit("p1", None, 0, 1, 1, fail)
    assert isinstance(failed.future.exception(), OSError)
    assert [key for key, _ in writes.finished()] == ["p1"]
    writes.close()
