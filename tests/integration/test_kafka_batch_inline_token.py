"""The Kafka batch statement and the batch plan take their deduplication token from their own SETTINGS clause.

Why: on the embedded engine clickhouse-connect applies per-call settings with five more statements per call (read
the old values, SET, SET them back). sql/fastpath/observed_batch.sql and sql/queries/kafka_batch_claim.sql read the
token as a query parameter instead (`Sink.write_select`'s `INLINE_TOKEN`). What must hold on the real engine: the
same token stores the batch once, another token stores it again, and without a token nothing is deduplicated.
"""

from __future__ import annotations

import pytest

from pipeline.normalize.gctrace import GC_TABLE
from pipeline.normalize.kafka_messages import SOURCE, KafkaMessage
from pipeline.sink import INLINE_DEDUPLICATE, INLINE_TOKEN, Sink
from pipeline.sources.kafka.gctrace_engine import KafkaGctraceEngine, clean_input
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext
from tests.conftest import DATA

pytestmark = [pytest.mark.integration]

RECEIVED_MS = 1_796_119_200_123


def _messages(per_message: int) -> list[KafkaMessage]:
    """Plain gc summary lines of a real Go 1.27 capture, `per_message` per message, two instances taking turns."""
    lines = [line for line in (DATA / "go-runtime").glob("*.txt") for line in line.read_text().splitlines()
             if line.startswith("gc ") and " ms clock, " in line and line.rstrip().endswith(" P")][:400]
    return [KafkaMessage("gctrace", 0, n, 1_796_119_200_000 + n, f"api/pod-{n % 2}".encode(),
                         "\n".join(lines[first:first + per_message]).encode())
            for n, first in enumerate(range(0, len(lines), per_message))]


def _gc_rows(store: Store) -> int:
    return int(store.scalar(f"SELECT count() FROM {store.database}.gc_events"))


@pytest.mark.parametrize("per_message", [50, 1], ids=["batched values", "one line per message"])
def test_the_batch_statement_deduplicates_on_the_token_it_is_given_as_a_parameter(settings, store,
                                                                                    per_message: int) -> None:
    engine = KafkaGctraceEngine(store, settings.sql_dir, RenderContext(store.database, settings.retention_days))
    encoded = clean_input(_messages(per_message), 1 << 20)
    assert encoded is not None and encoded.one_line == (per_message == 1)
    statement = engine.statement(encoded)
    assert INLINE_TOKEN in statement and INLINE_DEDUPLICATE in statement
    data, identities, lines = encoded.data, encoded.identities, encoded.lines
    assert lines >= 100
    sink = Sink(store)

    def write(token: str | None) -> None:
        sink.write_select(GC_TABLE, statement, rows=lines, token=token, data=data,
                          parameters={"services": [s for s, _ in identities], "instances": [i for _, i in identities],
                                      "source": SOURCE, "received_ms": RECEIVED_MS})

    write("kafka/g/gctrace/0/0-8")
    assert _gc_rows(store) == lines
    write("kafka/g/gctrace/0/0-8")  # a replay under the same token: dropped
    assert _gc_rows(store) == lines
    write("kafka/g/gctrace/0/9-12")  # another token: stored
    assert _gc_rows(store) == 2 * lines
    write(None)  # no token: no deduplication at all, even of a block seen before
    write(None)
    assert _gc_rows(store) == 4 * lines
    witnesses = dict(store.rows(f"SELECT ingest_batch, count() FROM {store.database}.gc_events GROUP BY ingest_batch"))
    assert witnesses == {"kafka/g/gctrace/0/0-8/gc_events": lines, "kafka/g/gctrace/0/9-12/gc_events": lines,
                         "": 2 * lines}
    # No per-call setting leaked into the session: the next statements deduplicate as the table's defaults say.
    assert store.scalar("SELECT value FROM system.settings WHERE name = 'insert_deduplication_token'") == ""


def test_a_statement_that_does_not_set_its_own_deduplication_is_refused_before_it_runs(store) -> None:
    """write_select passes the token only as the statement's parameters; a statement without them would store a
    replay twice, so it is refused before anything is sent."""
    sql = f"INSERT INTO {store.database}.gc_events (service) SELECT 'x'"
    with pytest.raises(ValueError, match="deduplication"):
        Sink(store).write_select(GC_TABLE, sql, rows=1, parameters={}, token="kafka/g/gctrace/0/0-1")
    assert _gc_rows(store) == 0
