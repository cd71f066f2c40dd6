"""The bench's Kafka row still runs on a tiny topic, and reports the group join apart from the consuming.

No timing is asserted (speed is measured by `make bench`, not by tests): the join is read from the worker's state
(its first assignment), so it must lie inside the run, and the rate from the assignment must be the rows over the
rest of the run.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bench import clients
from bench.run import run_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_kafka_row_reports_the_join_and_the_rate_from_the_assignment(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = f"bench-smoke-{uuid.uuid4().hex[:6]}"
    messages = clients.produce_gctrace(kafka_bootstrap, topic, instances=4, lines_per_instance=300,
                                       lines_per_message=1)
    result = run_worker("kafka", {"dsn": f"chdb://{tmp_path / 'store'}", "bootstrap": kafka_bootstrap,
                                  "topic": topic, "group": f"g-{topic}", "lines": messages,
                                  "kafka": {"gctrace_engine_min_lines": 1}}, timeout=180)
    assert result.units == result.rows == 1_200
    join = result.extra["join_s"]
    assert 0 < join < result.wall_s
    assert result.extra["assigned_rate"] == pytest.approx(result.rows / (result.wall_s - join))
