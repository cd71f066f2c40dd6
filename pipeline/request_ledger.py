"""The OTLP requests already stored, remembered in the store so that a restarted process knows them too.

The writer (`pipeline.sink.BatchingWriter`) remembers recent request tokens in memory, which catches an
export retried after a lost response while the process lives. A process that restarted between the first
attempt and the retry remembers nothing, and when the first attempt was merged with other requests into one
insert the store's own insert deduplication cannot catch it either (the merged insert had no single token).
So the writer records the tokens of stored requests in `otlp_requests`, and before its first write a
starting writer reads the newest of them back (one query, at most `dedup_window` tokens).

Tokens are recorded after their rows, together, at most every `ledger_interval` seconds (1 s) and when the
writer stops: one small insert per export would cost the store a part each (about 9 ms of CPU). A restart
(SIGTERM) therefore forgets nothing; a crash (SIGKILL) forgets the tokens of the last second, whose retries
are then stored again (the at-least-once case of docs/reliability.md), never a request acknowledged and lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pipeline.sqlfiles import RenderContext, load_statement
from pipeline.store.client import Store

TABLE = "otlp_requests"


class RequestLedger:
    """Reads and records the tokens of stored requests."""

    def __init__(self, store: Store, sql_dir: Path, ctx: RenderContext) -> None:
        self.store = store
        self._recent_sql = load_statement(sql_dir, "queries/otlp_requests_recent.sql", ctx)

    def recent(self, limit: int) -> list[str]:
        """The `limit` most recently recorded tokens, oldest first."""
        rows = self.store.dicts(self._recent_sql, {"limit": limit})
        return [str(row["token"]) for row in reversed(rows)]

    def record(self, tokens: Sequence[str]) -> None:
        if tokens:
            now = datetime.now(UTC)
            self.store.insert_columns(TABLE, {"token": list(tokens), "stored_at": [now] * len(tokens)})
