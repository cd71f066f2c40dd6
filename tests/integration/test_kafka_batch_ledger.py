"""The batch plan is a compare-and-set on the real engine: the first plan for a start offset is the one that stands.

BatchLedger.claim inserts its row with a statement (sql/queries/kafka_batch_claim.sql) under the token
plan/<group>/<topic>/<partition>/<start>; a second claim of the same start, with another end or path, must be
dropped by the engine and read back as the first (docs/kafka.md, "Two workers on one partition").
"""

from __future__ import annotations

import pytest

from pipeline.sources.kafka.delivery import BatchLedger
from pipeline.store.migrate import context_from_settings

pytestmark = [pytest.mark.integration]


def test_the_first_plan_for_a_start_offset_stands(settings, store) -> None:
    ledger = BatchLedger(store, "g-ledger", settings.sql_dir, context_from_settings(settings))
    other = BatchLedger(store, "g-ledger", settings.sql_dir, context_from_settings(settings))
    assert ledger.plan("t", 3, 100) is None
    first = ledger.claim("t", 3, 100, 137, 37, gctrace_engine=True)
    assert first.end == 137 and first.gctrace_engine
    assert other.claim("t", 3, 100, 250, 150, gctrace_engine=False) == first  # the zombie follows the first plan
    assert other.plan("t", 3, 100) == first  # and so does a replaying worker, to its time (its rows' received_at)
    assert first.planned_at.tzinfo is not None
    assert ledger.claim("t", 4, 100, 250, 150).end == 250  # another partition, another plan
    assert ledger.claim("t", 3, 137, 180, 43).end == 180  # the next batch of the partition
    rows = store.rows(f"SELECT count(), sum(messages) FROM {store.database}.kafka_batches "
                      "WHERE group_id = 'g-ledger'")
    assert rows[0] == (3, 37 + 150 + 43)
