"""Deciding whether a statement may run on the read-only query endpoint.

The engine's own `readonly = 2` session setting already refuses INSERT, DDL and `SET readonly = 0`, but it
still lets a SELECT read any file (`file()`), fetch URLs (`url()`, `s3()`), reach other servers (`remote()`,
`mysql()`), write a file (`INTO OUTFILE`, which the embedded engine executes) or kill queries. So every
statement is also checked here, on the engine's own parse of it:

1. the engine normalizes the text (`formatQuerySingleLine`), which rejects multi-statements and syntax
   errors, drops comments and fixes case; the normalized text is what runs, so the check sees what executes;
2. the engine's `EXPLAIN AST` of that text is walked: the statement kind must be a read (SELECT, SHOW,
   DESCRIBE, EXISTS, EXPLAIN), every table function must be on a short list of in-memory generators, and
   no function that reaches files, URLs or other servers may appear anywhere, however deeply nested.

This module only interprets the engine's output; it never parses SQL itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

READONLY = 164
ACCESS_DENIED = 497

# Statement kinds (the root node of EXPLAIN AST) that only read.
_READ_ROOT_PREFIXES = ("Select", "Show", "Describe", "Exists", "Explain")
# Node kinds that change something; refused wherever they appear (e.g. under EXPLAIN).
_WRITE_NODE_PREFIXES = (
    "Insert", "Create", "Alter", "Drop", "Rename", "Truncate", "Optimize", "System", "Kill", "Grant",
    "Revoke", "Attach", "Detach", "Delete", "Undrop", "Backup",
)
# Table functions that only generate data in memory or read tables the user can already select from.
SAFE_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "generaterandom",
    "values", "view", "merge", "null", "format",
})
# Functions (table or scalar) that read files, fetch URLs, run programs or reach other servers.
OUTSIDE_FUNCTIONS = frozenset({
    "file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "gcs", "oss", "cosn", "hdfs", "hdfscluster",
    "azureblobstorage", "azureblobstoragecluster", "remote", "remotesecure", "cluster", "clusterallreplicas",
    "mysql", "postgresql", "mongodb", "redis", "sqlite", "jdbc", "odbc", "executable", "executablepool", "input",
    "deltalake", "hudi", "iceberg", "icebergs3", "icebergazure", "icebergHDFS".lower(), "icebergLocal".lower(),
    "paimon", "arrowflight", "arrowflightsql", "ytsaurus", "fuzzjson", "fuzzquery", "filesystemcache",
})

# Settings whose values are SQL the engine runs (row filters) or that switch the parser to another dialect:
# their text never reaches the AST check above, so a filter like `throwIf(1, (SELECT ... FROM file(...)))`
# would read a file and hand it back in the error message. Refused as URL parameters and in SETTINGS clauses.
SQL_CARRYING_SETTINGS = frozenset({
    "additional_table_filters", "additional_result_filter", "dialect", "allow_experimental_kusto_dialect",
    "allow_experimental_prql_dialect", "implicit_select", "implicit_table_at_top_level",
})
_SQL_SETTING_RE = re.compile(
    r"`?\b(" + "|".join(sorted(SQL_CARRYING_SETTINGS)) + r")\b`?\s*=", re.IGNORECASE
)
_STRING_RE = re.compile(r"'(?:[^'\\]|\\.)*'")

_NODE_RE = re.compile(r"^(?P<indent> *)(?P<kind>\S+)(?: (?P<name>[^ (]+))?")
_QUOTED_RE = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"")
_OUTFILE_RE = re.compile(r"\bINTO\s+OUTFILE\b|\bFROM\s+INFILE\b", re.IGNORECASE)
_FORMAT_RE = re.compile(r"\sFORMAT\s+(\w+)(?:\s+SETTINGS\s.*)?$", re.IGNORECASE | re.S)


class Refusal(Exception):
    """Why a statement may not run; `code` is the ClickHouse error code the client receives."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AstNode:
    depth: int
    kind: str
    name: str
    parent_kind: str


def parse_explain_ast(text: str) -> list[AstNode]:
    """The nodes of `EXPLAIN AST` output (one node per line, one space of indent per level)."""
    nodes: list[AstNode] = []
    stack: list[str] = []
    for line in text.splitlines():
        match = _NODE_RE.match(line)
        if not match or not match.group("kind"):
            continue
        depth = len(match.group("indent"))
        del stack[depth:]
        parent = stack[-1] if stack else ""
        nodes.append(AstNode(depth, match.group("kind"), match.group("name") or "", parent))
        stack.append(match.group("kind"))
    return nodes


def without_literals(sql: str) -> str:
    """The SQL with every quoted string and identifier emptied, so keywords can be searched safely."""
    return _QUOTED_RE.sub("''", sql)


def output_format(normalized_sql: str) -> str | None:
    """The FORMAT clause of a normalized statement (formatQuery puts it last, before SETTINGS)."""
    match = _FORMAT_RE.search(without_literals(normalized_sql))
    return match.group(1) if match else None


def check_setting(name: str) -> None:
    """Raise `Refusal` for a setting the read-only endpoint may not change (see SQL_CARRYING_SETTINGS)."""
    if name.lower() in SQL_CARRYING_SETTINGS:
        raise Refusal(ACCESS_DENIED, f"setting {name} carries SQL and is not allowed on the query endpoint")


def check_read_only(normalized_sql: str, explain_ast: str) -> None:
    """Raise `Refusal` unless the statement only reads tables and in-memory generators."""
    if _OUTFILE_RE.search(without_literals(normalized_sql)):
        raise Refusal(ACCESS_DENIED, "INTO OUTFILE and FROM INFILE are not allowed on the query endpoint")
    found = _SQL_SETTING_RE.search(_STRING_RE.sub("''", normalized_sql))
    if found:
        check_setting(found.group(1))
    nodes = parse_explain_ast(explain_ast)
    if not nodes:
        raise Refusal(READONLY, "Cannot execute an empty statement in readonly mode")
    root = nodes[0]
    if not root.kind.startswith(_READ_ROOT_PREFIXES):
        raise Refusal(READONLY, f"Cannot execute query in readonly mode ({root.kind})")
    for node in nodes:
        if node.kind.startswith(_WRITE_NODE_PREFIXES) and node.depth > 0:
            raise Refusal(READONLY, f"Cannot execute query in readonly mode ({node.kind})")
        if node.kind != "Function":
            continue
        name = node.name.lower()
        if name in OUTSIDE_FUNCTIONS:
            raise Refusal(ACCESS_DENIED, f"function {node.name} reaches outside the store and is not allowed")
        if node.parent_kind == "TableExpression" and name not in SAFE_TABLE_FUNCTIONS:
            raise Refusal(ACCESS_DENIED, f"table function {node.name} is not allowed on the read-only endpoint")
