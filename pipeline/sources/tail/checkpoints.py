"""Checkpoints and batch plans of followed files, kept in the store next to the rows they protect.

The same idea as the Kafka batch plans (pipeline/sources/kafka/delivery.py, docs/kafka.md): before a
batch [start, end) of a file is written, its plan is inserted with a token derived from the start, so the
first plan for a start offset is the only one kept; the rows go in with the token
`tail/<file_key>/<start>`; the checkpoint `end` is written last. A process killed at any instant resumes
at its checkpoint, finds the plan that starts there and replays exactly that batch (same range, same
carried text, same read time), so ClickHouse drops whatever had already landed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store, StoreError
from pipeline.store.migrate import RenderContext

PLANS = "file_batches"
CHECKPOINTS = "file_checkpoints"
FINGERPRINT_BYTES = 256


@dataclass(frozen=True)
class Plan:
    end: int
    carry: bytes     # text carried over from a rotated predecessor, prepended to the batch
    read_at_ns: int  # observed time of lines that carry no timestamp of their own


@dataclass(frozen=True)
class Checkpoint:
    generation: int
    offset: int
    fingerprint: str


def fingerprint(head: bytes) -> str:
    """What identifies a file's content: its first bytes (up to FINGERPRINT_BYTES), as '<n>:<crc32>'."""
    return f"{len(head)}:{zlib.crc32(head)}"


def fingerprint_length(value: str) -> int:
    try:
        return int(value.split(":", 1)[0])
    except ValueError:
        return 0


def batch_token(file_key: str, start: int) -> str:
    return f"tail/{file_key}/{start}"


class CheckpointStore:
    """Reads and writes `file_checkpoints` and `file_batches`."""

    def __init__(self, store: Store, sql_dir: Path, render: RenderContext, node: str) -> None:
        self.store = store
        self.node = node
        self._checkpoint_sql = load_statement(sql_dir, "queries/tail_checkpoint.sql", render)
        self._plan_sql = load_statement(sql_dir, "queries/tail_batch_plan.sql", render)
        self._last_sql = load_statement(sql_dir, "queries/tail_last_at_path.sql", render)

    def file_key(self, device: int, inode: int, generation: int) -> str:
        return f"{self.node}/{device}:{inode}:{generation}"

    def resume_point(self, device: int, inode: int) -> Checkpoint | None:
        params = {"node": self.node, "device": device, "inode": inode}
        rows = self.store.query(self._checkpoint_sql, params).named_results()
        for row in rows:
            return Checkpoint(int(row["generation"]), int(row["offset"]), str(row["fingerprint"]))
        return None

    def last_at_path(self, path: str) -> tuple[int, int] | None:
        """(device, inode) of the file last checkpointed under `path`, or None."""
        for row in self.store.query(self._last_sql, {"node": self.node, "path": path}).named_results():
            device, inode, _generation = str(row["file_key"]).rpartition("/")[2].split(":")
            return int(device), int(inode)
        return None

    def planned(self, file_key: str, start: int) -> Plan | None:
        params = {"node": self.node, "file_key": file_key, "start_offset": start}
        rows = self.store.query(self._plan_sql, params).named_results()
        for row in rows:
            return Plan(int(row["end_offset"]), bytes.fromhex(row["carry"]), int(row["read_at_ns"]))
        return None

    def claim(self, file_key: str, path: str, start: int, plan: Plan) -> Plan:
        """Record `plan` for the batch starting at `start` unless one exists; returns the plan that stands."""
        self.store.insert_columns(
            PLANS,
            {"node": [self.node], "file_key": [file_key], "path": [path], "start_offset": [start],
             "end_offset": [plan.end], "carry": [plan.carry.hex()], "read_at": [plan.read_at_ns]},
            dedup_token=f"tailplan/{file_key}/{start}",
        )
        stored = self.planned(file_key, start)
        if stored is None:
            raise StoreError(f"batch plan {file_key}@{start} not readable after insert")
        return stored

    def commit(self, *, device: int, inode: int, generation: int, offset: int, fingerprint: str, path: str) -> None:
        self.store.insert_columns(
            CHECKPOINTS,
            {"node": [self.node], "device": [device], "inode": [inode], "generation": [generation], "offset": [offset],
             "fingerprint": [fingerprint], "path": [path]},
            dedup_token=f"tailcp/{self.node}/{device}:{inode}:{generation}/{offset}",
        )
