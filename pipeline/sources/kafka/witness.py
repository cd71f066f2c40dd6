"""A replayed Kafka batch checks that its rows are stored, by their witness, instead of trusting its tokens.

Why: a table without replication (the embedded engine) records an insert's deduplication token in its
deduplication log before it commits the insert's part. A process killed between the two leaves the token and no
part; the next owner replays the batch under the same token, the engine drops the insert as a duplicate, the
offset moves on, and the rows are gone. The token alone cannot tell "stored" from "recorded, then lost".

Every row a Kafka write stores carries its insert's token in the column `ingest_batch` (migration 106), written
in the same block, so it lands in the same part as the rows: the rows prove themselves. A replay (a plan found
at takeover, or another worker's plan followed) inserts each table as before, under the same token, then counts
that table's rows by witness:

* as many as it sent: stored (by this insert, or by the dead owner's);
* none: the gap. The insert is made again under `<token>/retry-<n>`, a token the engine has not seen; the
  witness stays the original token, so a later replay of the same batch finds the rows;
* some: an insert cut into several parts (a batch spanning partitions), of which some landed. They are deleted
  by witness and the insert is made again under a new token.

A retried insert is counted again (it too could have been cut short by a kill in another process, never in this
one, but the loop costs nothing when it holds), up to `MAX_RETRIES` times. The normal path (a batch this worker
planned itself) pays nothing: no count, no extra statement.

The count runs after the insert even when the engine wrote: the embedded client's summary reports the rows it
read, not those written, so it cannot tell a deduplicated insert from a stored one; one count per table of a
replayed batch is what replays cost.

`profile_stacks` (ReplacingMergeTree by stack id) keeps one row per stack whoever wrote it, so its count by
witness may fall below what was sent once merges keep another snapshot's copy: there any row of the witness
proves the insert landed (the table has no partition key, so an insert is one part), and none means insert again;
an extra copy of a stack is what the table collapses anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pipeline.sqlfiles import RenderContext, load_statement
from pipeline.store.client import Store, StoreError

log = logging.getLogger(__name__)

MAX_RETRIES: Final = 8
# Tables whose engine keeps one row per key across inserts: their count by witness is a lower bound.
_REPLACING: Final = frozenset({"profile_stacks"})


class ReplayWitness:
    """Makes one replayed insert certain: insert, count by witness, insert again under a new token if needed."""

    def __init__(self, store: Store, sql_dir: Path, ctx: RenderContext) -> None:
        self.store = store
        self._count_sql = load_statement(sql_dir, "queries/kafka_witness_count.sql", ctx)
        self._delete_sql = load_statement(sql_dir, "queries/kafka_witness_delete.sql", ctx)
        self.restored = 0  # inserts found missing (or partial) by a replay and stored again

    def stored(self, table: str, witness: str) -> int:
        """Rows of `table` whose witness is `witness`."""
        return int(self.store.scalar(self._count_sql, {"table": table, "witness": witness}) or 0)

    def ensure(self, table: str, token: str, expected: int, insert: Callable[[str], int]) -> int:
        """Insert with `insert(token)` (rows that carry `token` as their witness), then make sure `table` holds
        `expected` rows of that witness, inserting again under `<token>/retry-<n>`; returns `insert`'s count."""
        written = insert(token)
        for attempt in range(1, MAX_RETRIES + 1):
            found = self.stored(table, token)
            if found == expected or (found and table in _REPLACING):
                return written
            if found > expected:  # more than one insert's worth: nothing to restore, say so
                log.warning("kafka replay: %s holds %d rows of %s, %d were sent", table, found, token, expected)
                return written
            if found:
                log.warning("kafka replay: %s holds %d of the %d rows of %s (an insert cut short); storing it again",
                            table, found, expected, token)
                self.store.command(self._delete_sql, parameters={"table": table, "witness": token})
            else:
                log.warning("kafka replay: %s holds none of the %d rows of %s although the engine knew its token "
                            "(a process killed inside that insert); storing it again", table, expected, token)
            self.restored += 1
            written = insert(f"{token}/retry-{attempt}")
        raise StoreError(f"kafka replay: {table} still lacks the rows of {token} after {MAX_RETRIES} inserts")
