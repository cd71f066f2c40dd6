from pipeline.store.migrate import MigrationError, RenderContext, render, split_statements


def test_split_respects_quotes_and_comments() -> None:
    sql = "CREATE TABLE a (x String DEFAULT ';'); -- c; d\nSELECT 1 /* ; */;\n\n-- only a comment;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x String DEFAULT ';')", "-- c; d\nSELECT 1 /* ; */"]


def test_render_cluster_and_single_node() -> None:
    sql = "CREATE TABLE {{db}}.t {{on_cluster}} ENGINE = {{replicated}}MergeTree TTL d + INTERVAL {{ttl_days}} DAY"
    assert render(sql, RenderContext("fw", 7)) == "CREATE TABLE fw.t  ENGINE = MergeTree TTL d + INTERVAL 7 DAY"
    clustered = render(sql, RenderContext("fw", 7, cluster="c1"))
    assert "ON CLUSTER 'c1'" in clustered and "ReplicatedMergeTree" in clustered


def test_render_rejects_unknown_placeholder() -> None:
    try:
        render("SELECT {{nope}}", RenderContext("fw", 1))
    except MigrationError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("unknown placeholder accepted")
