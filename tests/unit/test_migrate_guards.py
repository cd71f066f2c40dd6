"""Guarded migration statements and the cluster rendering of a copy-and-swap migration."""

from pipeline.store.migrate import Guard, RenderContext, guards_of, render_guarded, render_statements

CLUSTER = RenderContext(database="fw", ttl_days=7, cluster="fleet")
SWAP = """
-- only if: otel_logs.TimestampTime exists
CREATE TABLE IF NOT EXISTS {{db}}.otel_logs_next {{on_cluster}} (Timestamp DateTime64(9), ServiceName String)
ENGINE = {{replicated}}MergeTree ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp);
-- only if: otel_logs.TimestampTime exists
-- only if: otel_logs_next exists
EXCHANGE TABLES {{db}}.otel_logs AND {{db}}.otel_logs_next {{on_cluster}};
-- only if: otel_logs_next missing
DROP TABLE IF EXISTS {{db}}.otel_logs_next {{on_cluster}} SYNC;
SELECT 1;
"""


def test_guards_are_read_from_comment_lines_and_combined() -> None:
    statements = render_guarded(SWAP, RenderContext(database="fw", ttl_days=7))
    assert [guards for guards, _ in statements] == [
        (Guard("otel_logs", "TimestampTime", True),),
        (Guard("otel_logs", "TimestampTime", True), Guard("otel_logs_next", "", True)),
        (Guard("otel_logs_next", "", False),),
        (),
    ]
    assert guards_of("SELECT 1 -- only if: x exists") == ()  # only whole comment lines count


def test_exchange_on_a_cluster_swaps_local_tables_and_rebuilds_fronts() -> None:
    statements = render_statements(SWAP, CLUSTER)
    assert statements[0].startswith("CREATE TABLE IF NOT EXISTS fw.otel_logs_next_local ON CLUSTER 'fleet'")
    # The shard key is the first plain column of the ORDER BY, not the toStartOfFiveMinutes(...) expression.
    assert statements[1].endswith("Distributed('fleet', 'fw', 'otel_logs_next_local', cityHash64(ServiceName))")
    assert statements[2:7] == [
        "EXCHANGE TABLES fw.otel_logs_local AND fw.otel_logs_next_local ON CLUSTER 'fleet'",
        "DROP TABLE IF EXISTS fw.otel_logs ON CLUSTER 'fleet' SYNC",
        "DROP TABLE IF EXISTS fw.otel_logs_next ON CLUSTER 'fleet' SYNC",
        "CREATE TABLE IF NOT EXISTS fw.otel_logs ON CLUSTER 'fleet' AS fw.otel_logs_local "
        "ENGINE = Distributed('fleet', 'fw', 'otel_logs_local', cityHash64(ServiceName))",
        "CREATE TABLE IF NOT EXISTS fw.otel_logs_next ON CLUSTER 'fleet' AS fw.otel_logs_next_local "
        "ENGINE = Distributed('fleet', 'fw', 'otel_logs_next_local', cityHash64(ServiceName))",
    ]
    assert statements[7:] == [
        "DROP TABLE IF EXISTS fw.otel_logs_next_local ON CLUSTER 'fleet' SYNC",
        "DROP TABLE IF EXISTS fw.otel_logs_next ON CLUSTER 'fleet' SYNC",
        "SELECT 1",
    ]


def test_on_a_cluster_the_fronts_are_rebuilt_whenever_their_local_table_exists() -> None:
    guarded = render_guarded(SWAP, CLUSTER)[2:7]
    swap_guards = (Guard("otel_logs", "TimestampTime", True), Guard("otel_logs_next", "", True))
    assert [guards for guards, _ in guarded] == [
        swap_guards,
        (Guard("otel_logs", "", True),), (Guard("otel_logs_next", "", True),),
        (Guard("otel_logs", "", True),), (Guard("otel_logs_next", "", True),),
    ]
