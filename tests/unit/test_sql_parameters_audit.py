"""Every SQL text built in Python interpolates identifiers only; user values travel as query parameters.

The audit reads the pipeline's source with `ast`: any f-string whose literal parts look like SQL may only
interpolate the expressions listed here, each an identifier that is validated (database and cluster names by
pipeline.config / RenderContext, table names taken from SQL files in the repository) or, on the query
endpoint, the reader's own statement and settings, which run in a read-only session. A new interpolation
of anything else fails this test until it is turned into a `{name:Type}` parameter.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"
_SQL_WORDS = re.compile(r"\b(SELECT|INSERT|ALTER|CREATE|DROP|SET|USE|EXPLAIN|FROM|WHERE|OPTIMIZE|TRUNCATE|DELETE)\b")

# (file relative to pipeline/, interpolated expression) -> why it is safe.
ALLOWED: dict[tuple[str, str], str] = {
    ("store/migrate.py", "ctx.database"): "validated identifier (RenderContext)",
    ("store/migrate.py", "ctx.values()['on_cluster']"): "built from the validated cluster name",
    ("store/migrate.py", "db"): "database name matched by \\w+ in a repository migration",
    ("store/migrate.py", "table"): "table name matched by \\w+ in a repository migration",
    ("store/migrate.py", "other"): "table name matched by \\w+ in a repository migration (EXCHANGE TABLES)",
    ("store/migrate.py", "ctx.cluster"): "validated identifier (RenderContext)",
    ("store/migrate.py", "LOCAL_SUFFIX"): "constant",
    ("store/migrate.py", "key"): "sharding expression from the migration's ORDER BY identifier",
    ("jobs/runner.py", "table"): "INSERT target matched in a repository job file",
    ("report/triage.py", "settings.database"): "validated identifier (Settings)",
    ("store/query_engine.py", "quote_identifier(request.database)"): "quoted identifier",
    ("store/query_engine.py", "sql"): "the reader's own statement, normalized and checked by sqlguard, readonly",
    ("store/query_engine.py", "name"): "setting name on reader_settings' allow-list (or matched by a name pattern)",
    ("store/query_engine.py", "literal"): "setting value: an escaped string or a literal matched by reader_settings",
    ("store/query_engine.py", "reader_settings.sql_literal(running.tag)"): "internal uuid tag, escaped literal",
    ("backtest/replay.py", "re.escape(ctx.database)"): "a regex over a job's own SQL text, never run as SQL",
    ("backtest/replay.py", "re.escape(table)"): "a regex over a job's own SQL text, never run as SQL",
}


def sql_interpolations() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PIPELINE.rglob("*.py")):
        rel = path.relative_to(PIPELINE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if not _SQL_WORDS.search(literal):
                continue
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    found.append((rel, node.lineno, ast.unparse(value.value)))
    return found


def test_sql_fstrings_interpolate_only_validated_identifiers() -> None:
    found = sql_interpolations()
    assert found, "the audit found no SQL f-strings at all: its pattern no longer matches the code"
    unexpected = [f"pipeline/{rel}:{line}: {{{expr}}}" for rel, line, expr in found if (rel, expr) not in ALLOWED]
    assert not unexpected, "values formatted into SQL; use query parameters:\n" + "\n".join(unexpected)


def test_no_percent_or_format_built_sql() -> None:
    """`"... %s" % value` and `"...".format(value)` on SQL text are refused outright."""
    offenders = []
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target = None
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
                target = node.left.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
                  and isinstance(node.func.value, ast.Constant)):
                target = node.func.value.value
            if isinstance(target, str) and _SQL_WORDS.search(target) and re.search(r"\b(FROM|INTO|TABLE)\b", target):
                offenders.append(f"{path.relative_to(PIPELINE)}:{node.lineno}")
    assert not offenders, offenders
