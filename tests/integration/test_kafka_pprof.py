"""The `pprof` topic through a real broker (tansu): binary profiles with identity in headers become the
same rows as from a file; a broken profile is quarantined with its offset; nothing stops the partition."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.kafka_pipeline import create_topics, kafka_settings, run_worker, send

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parent.parent / "data" / "pprof"


def test_pprof_topic(settings, store, kafka_bootstrap, kafka_names, producer) -> None:
    topic = kafka_names.topic("pprof")
    create_topics(kafka_bootstrap, {topic: 1})
    allocs = (DATA / "go1.27-allocs.pb.gz").read_bytes()
    send(producer, topic, allocs, headers={"service": "api", "instance": "pod-1"})
    send(producer, topic, (DATA / "go1.27-goroutineleak-debug2.txt").read_bytes(),
         headers={"service": "api", "instance": "pod-1", "profile-type": "goroutineleak"})
    send(producer, topic, allocs[: len(allocs) // 2], headers={"service": "api", "instance": "pod-2"})
    send(producer, topic, (DATA / "go1.27-goroutine.pb.gz").read_bytes(), key=b"web/pod-9")
    producer.flush()
    run_worker(kafka_settings(settings, kafka_bootstrap, kafka_names), store)
    db = store.database
    snaps = store.rows(f"SELECT service, instance, profile_type, format, source FROM {db}.profile_snapshots "
                       "ORDER BY service, profile_type")
    assert snaps == [("api", "pod-1", "allocs", "pprof", "kafka"), ("api", "pod-1", "goroutineleak", "debug2", "kafka"),
                     ("web", "pod-9", "goroutine", "pprof", "kafka")]
    leaked = store.rows(f"SELECT site_function, sum(goroutines) FROM {db}.goroutine_samples "
                        "WHERE leaked = 1 GROUP BY site_function")
    assert [fn for fn, _ in leaked] == ["main.leakOrphan"]
    top = store.rows(f"SELECT site_function FROM {db}.heap_samples ORDER BY alloc_space DESC LIMIT 1")
    assert top == [("main.allocHot",)]
    raw = store.rows(f"SELECT base64Decode(base64Encode(data)) = data, length(data) FROM {db}.profile_raw "
                     "WHERE profile_type = 'allocs'")
    assert raw == [(1, len(allocs))]
    bad = store.rows(f"SELECT instance, topic, offset, reason FROM {db}.quarantine WHERE signal = 'pprof'")
    assert len(bad) == 1 and bad[0][:3] == ("pod-2", topic, 2) and "truncated" in bad[0][3]
