"""A replayed insert (a Kafka batch, an OTLP journal segment) checks that its rows are stored, by their witness,
instead of trusting its tokens.

The OTLP journal (pipeline/journal.py) uses the same check for a segment it finds on disk at start: its rows carry
the segment's name as their witness, so a segment whose insert landed just before the process died is not
stored twice, and one whose insert was cut short is stored whole.

Why: a table without replication (the embedded engine) records an insert's deduplication token in its
deduplication log before it commits the insert's part. A process killed between the two leaves the token and no
part; the next owner replays the batch under the same token, the engine drops the insert as a duplicate, the
offset moves on, and the rows are gone. The token alone cannot tell "stored" from "recorded, then lost".

Every row a Kafka write stores carries its insert's token in the column `ingest_batch` (migration 106), written
in the same block, so it lands in the same part as the rows: the rows prove themselves. A replay (a plan found
at takeover, or another worker's plan followed, whose rows carry a witness) counts each table's rows by witness
before and after its insert:

* as many as were sent: stored (by the previous owner: nothing is inserted, so this holds even past the
  deduplication window; or by this insert);
* none before: the insert is made as planned, under its token (a table the previous owner never reached);
* none after that insert: the gap. The insert is made again under `<token>/retry-<random>`, a token no insert
  ever had, so the engine stores it; the witness stays the original token, so a later replay of the same batch
  (after a kill inside this insert too) finds the rows or repairs them the same way;
* some: an insert cut into several parts (a batch spanning partitions), of which some landed. They are deleted
  by witness and the insert is made again under a new token.

The retried insert is not counted: rows older than the retention are dropped by the table's TTL at insert, so no
number of inserts would bring them, and a replay must not loop on them. The normal path (a batch this worker
planned itself) pays nothing: no count, no extra statement.

The check is a count and not the insert's summary: the embedded client reports the rows it read as written, so
it cannot tell a deduplicated insert from a stored one. A replayed batch costs one or two counts per table.

`profile_stacks` (ReplacingMergeTree by stack id) keeps one row per stack whoever wrote it, so its count by
witness may fall below what was sent once merges keep another snapshot's copy: there any row of the witness
proves the insert landed (the table has no partition key, so an insert is one part), and none means insert again;
an extra copy of a stack is what the table collapses anyway.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pipeline.sqlfiles import RenderContext, load_statement
from pipeline.store.client import Store

log = logging.getLogger(__name__)

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
        """Make sure `table` holds the `expected` rows of the insert `insert(dedup_token)`, whose rows carry
        `token` as their witness; returns `expected`. Counted first: rows already there are not inserted again."""
        found = self.stored(table, token)
        if self._holds(table, token, found, expected):
            return expected
        if not found:  # not there: the insert as planned, under its token (a table the previous owner never reached)
            insert(token)
            found = self.stored(table, token)
            if self._holds(table, token, found, expected):
                return expected
        if found:
            log.warning("replay: %s holds %d of the %d rows of %s (an insert cut short); storing it again",
                        table, found, expected, token)
            self.store.command(self._delete_sql, parameters={"table": table, "witness": token})
        else:
            log.warning("replay: %s holds none of the %d rows of %s although the engine knew its token "
                        "(a process killed inside that insert); storing it again", table, expected, token)
        self.restored += 1
        # A token no insert ever had, so the engine stores the block; whatever happens to this insert, the next
        # replay of the batch counts its rows by witness again. Not counted here: rows beyond the retention are
        # dropped by the table's TTL at insert, and no number of inserts would make them appear.
        insert(f"{token}/retry-{uuid.uuid4().hex}")
        return expected

    @staticmethod
    def _holds(table: str, token: str, found: int, expected: int) -> bool:
        """Whether `found` rows of the witness mean the insert is stored."""
        if found > expected:  # more than one insert's worth: nothing to restore, but say so
            log.warning("replay: %s holds %d rows of %s, %d were sent", table, found, token, expected)
        return found >= expected or (found > 0 and table in _REPLACING)
