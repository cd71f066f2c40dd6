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


def test_include_inlines_a_fragment_of_the_same_tree_once(tmp_path) -> None:
    from pipeline.sqlfiles import RenderContext as Ctx
    from pipeline.sqlfiles import load_statement

    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "fields.sql").write_text("-- the fields\nnums[1] AS a,\nnums[2] AS b\n")
    (tmp_path / "q.sql").write_text("SELECT\n    {{include parts/fields.sql}}\nFROM {{db}}.t\n")
    sql = load_statement(tmp_path, "q.sql", Ctx(database="fw", ttl_days=7))
    assert sql == "SELECT\n    -- the fields\nnums[1] AS a,\nnums[2] AS b\nFROM fw.t"
    (tmp_path / "bad.sql").write_text("SELECT {{include ../q.sql}}")
    import pytest

    with pytest.raises(MigrationError):  # outside the tree: refused, not left in the SQL
        load_statement(tmp_path, "bad.sql", Ctx(database="fw", ttl_days=7))
    # A fragment may include another; a cycle is refused, not expanded forever.
    (tmp_path / "parts" / "outer.sql").write_text("x,\n{{include parts/fields.sql}}")
    (tmp_path / "nested.sql").write_text("SELECT {{include parts/outer.sql}} FROM t")
    assert load_statement(tmp_path, "nested.sql", Ctx(database="fw", ttl_days=7)) == \
        "SELECT x,\n-- the fields\nnums[1] AS a,\nnums[2] AS b FROM t"
    (tmp_path / "parts" / "loop.sql").write_text("{{include parts/loop.sql}}")
    (tmp_path / "loop.sql").write_text("SELECT {{include parts/loop.sql}}")
    with pytest.raises(MigrationError):
        load_statement(tmp_path, "loop.sql", Ctx(database="fw", ttl_days=7))
