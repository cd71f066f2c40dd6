"""The read-only check over the engine's EXPLAIN AST output (captured from the real engine)."""

from __future__ import annotations

import pytest

from pipeline.store.sqlguard import ACCESS_DENIED, READONLY, Refusal, check_read_only, output_format

SELECT_FILE = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function FiLe (children 1)
       ExpressionList (children 1)
        Literal \\'x\\'
"""
SELECT_NUMBERS = SELECT_FILE.replace("Function FiLe", "Function numbers")


def test_reads_pass() -> None:
    check_read_only("SELECT * FROM numbers(3)", SELECT_NUMBERS)
    check_read_only("SHOW TABLES", "ShowTables\n")


@pytest.mark.parametrize(
    ("sql", "ast", "code"),
    [
        ("SELECT * FROM file('x')", SELECT_FILE, ACCESS_DENIED),
        ("SELECT * FROM loop(t)", SELECT_FILE.replace("Function FiLe", "Function loop"), ACCESS_DENIED),
        ("KILL QUERY WHERE 1", "KillQueryQuery Literal_UInt64_1 ASYNC (children 1)\n Literal UInt64_1\n", READONLY),
        ("SELECT 1 INTO OUTFILE 'x'", SELECT_NUMBERS, ACCESS_DENIED),
        ("SELECT 1", "", READONLY),
    ],
)
def test_refusals(sql: str, ast: str, code: int) -> None:
    with pytest.raises(Refusal) as refusal:
        check_read_only(sql, ast)
    assert refusal.value.code == code


def test_output_format() -> None:
    assert output_format("SELECT 1 FORMAT JSON") == "JSON"
    assert output_format("SELECT 1 FORMAT JSON SETTINGS max_threads = 1") == "JSON"
    assert output_format("SELECT 'x FORMAT CSV'") is None
    assert output_format("SELECT 1 AS FORMAT") is None


def test_settings_clauses_are_read_off_the_normalized_text() -> None:
    from pipeline.store.sqlguard import settings_clauses

    sql = ("SELECT 'SETTINGS x = 1' AS `SETTINGS`, 1 FROM (SELECT 2 SETTINGS max_threads = 3) "
           "SETTINGS max_threads = 1, `format_schema` = 'a, b', additional_table_filters = {'t': 'x = 1'} FORMAT JSON")
    assert settings_clauses(sql) == [
        ("max_threads", "3"), ("max_threads", "1"), ("format_schema", "'a, b'"),
        ("additional_table_filters", "{'t': 'x = 1'}"),
    ]
    assert settings_clauses("SHOW SETTINGS LIKE 'max%'") == []


def test_reader_settings_allow_list_and_caps() -> None:
    from pipeline.store.reader_settings import ReaderLimits, SettingRefused, resolve

    limits = ReaderLimits(max_threads=4, max_execution_time=10)
    out = resolve({"max_threads": "2", "session_timezone": "UTC", "readonly": "1"}, [("max_execution_time", "5")],
                  limits)
    assert out["max_threads"] == "'2'" and out["max_execution_time"] == "5"
    assert out["max_memory_usage"] == str(limits.max_memory_usage) and "readonly" not in out
    assert resolve({"max_threads": "64", "max_execution_time": "0"}, [], limits)["max_threads"] == "4"
    assert resolve({"max_execution_time": "0"}, [], limits)["max_execution_time"] == "10"
    for url, clause in (({}, [("max_threads", "5")]), ({}, [("max_execution_time", "0")]),
                        ({"format_schema": "x"}, []), ({}, [("output_format_schema", "'/tmp/x'")]),
                        ({"readonly": "0"}, []), ({}, [("max_result_rows", "rand()")]),
                        ({"function_sleep_max_microseconds_per_block": "0"}, [])):
        with pytest.raises(SettingRefused):
            resolve(url, clause, limits)
