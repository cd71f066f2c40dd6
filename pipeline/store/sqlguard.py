"""Deciding whether a statement may run on the read-only query endpoint.

The engine's own `readonly = 2` session setting already refuses INSERT, DDL and `SET readonly = 0`, but it
still lets a SELECT read any file (`file()`), fetch URLs (`url()`, `s3()`), reach other servers (`remote()`,
`mysql()`), write a file (`INTO OUTFILE`, which the embedded engine executes) or kill queries. So every
statement is also checked here, on the engine's own parse of it:

1. the engine normalizes the text (`formatQuerySingleLine`), which rejects multi-statements and syntax
   errors, drops comments and fixes case; the normalized text is what runs, so the check sees what executes;
2. the engine's `EXPLAIN AST` of that text is walked: the statement kind must be a read (SELECT, SHOW,
   DESCRIBE, EXISTS, EXPLAIN), every table function must be on a short list of in-memory generators, and
   no function that reaches files, URLs or other servers may appear anywhere, however deeply nested;
3. output formats must be on an allow-list (no format that reads a schema or template from a path), and
   introspection that shows other sessions' queries and errors or server paths (`system.processes`,
   `system.query_log`, `system.disks`, `data_paths`...) is hidden: only a short list of system tables is
   readable, and the two that hold paths (`tables`, `databases`) only by named, path-free columns;
4. the statement's own SETTINGS clauses are read off the normalized text (`settings_clauses`) so that the
   endpoint's settings allow-list covers them, and the number of clauses read must equal the engine's own
   count (`Set` nodes), so a clause this reading missed refuses the statement instead of slipping through.

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
    "catboostevaluate", "deltalakelocal", "hudilocal", "paimonlocal", "azurequeue", "s3queue",
    # not outside, but they show the server's paths (`path`, `tmp_path`, `user_files_path`...)
    "getserversetting", "getserversettings",
})

# Output formats a reader may ask for: none reads a schema, template or registry from a path or URL.
ALLOWED_FORMATS = frozenset(name.lower() for name in (
    "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "TabSeparatedWithNames", "TSVWithNames",
    "TabSeparatedWithNamesAndTypes", "TSVWithNamesAndTypes", "TabSeparatedRawWithNames", "TSVRawWithNames",
    "TabSeparatedRawWithNamesAndTypes", "TSVRawWithNamesAndTypes", "CSV", "CSVWithNames", "CSVWithNamesAndTypes",
    "JSON", "JSONStrings", "JSONCompact", "JSONCompactStrings", "JSONEachRow", "JSONLines", "JSONL", "NDJSON",
    "JSONStringsEachRow", "JSONCompactEachRow", "JSONCompactEachRowWithNames", "JSONCompactEachRowWithNamesAndTypes",
    "JSONCompactStringsEachRow", "JSONCompactStringsEachRowWithNames",
    "JSONCompactStringsEachRowWithNamesAndTypes", "JSONObjectEachRow", "JSONColumns", "JSONCompactColumns",
    "JSONColumnsWithMetadata", "PrettyJSONEachRow", "PrettyJSONLines", "PrettyNDJSON", "Native", "RowBinary",
    "RowBinaryWithNames", "RowBinaryWithNamesAndTypes", "Pretty", "PrettyCompact", "PrettySpace",
    "PrettyNoEscapes", "PrettyCompactNoEscapes", "PrettySpaceNoEscapes", "PrettyMonoBlock",
    "PrettyCompactMonoBlock", "PrettySpaceMonoBlock", "PrettyNoEscapesMonoBlock",
    "PrettyCompactNoEscapesMonoBlock", "PrettySpaceNoEscapesMonoBlock", "Vertical", "Markdown", "MD", "Values",
    "XML", "TSKV", "Null", "RawBLOB", "Parquet", "Arrow", "ArrowStream", "ORC", "Avro", "MsgPack", "BSONEachRow",
    "SQLInsert", "LineAsString",
))
# Functions whose first argument names a format (format() reads one, formatRow() writes one).
_FORMAT_ARGUMENT_FUNCTIONS = frozenset({"format", "formatrow", "formatrownonewline"})
# System tables readers may see: catalogues and generators. Not processes, query_log, errors, disks, parts...
ALLOWED_SYSTEM_TABLES = frozenset({
    "one", "numbers", "numbers_mt", "zeros", "zeros_mt", "settings", "formats", "functions", "table_functions",
    "databases", "tables", "columns", "data_type_families", "time_zones", "collations", "table_engines",
    "aggregate_function_combinators", "keywords", "contributors", "settings_changes", "merge_tree_settings",
    "data_skipping_indices",
})
# System tables with columns that hold server paths: readable only by name, never by * or a column matcher.
_PATH_HOLDING_TABLES = frozenset({"tables", "databases"})
_PATH_COLUMNS = frozenset({"data_path", "data_paths", "metadata_path", "metadata_file", "path", "uuid"})
_SYSTEM_DATABASES = frozenset({"system"})
_INFORMATION_SCHEMA = frozenset({"information_schema"})
# SHOW statements that only list catalogue entries (SHOW PROCESSLIST, MERGES, CLUSTERS... are refused).
_SHOW_ALLOWED_RE = re.compile(
    r"^SHOW\s+(?:FULL\s+)?(?:TEMPORARY\s+)?(?:EXTENDED\s+)?"
    r"(?:TABLES|DATABASES|COLUMNS|FIELDS|CREATE|SETTINGS|SETTING|FUNCTIONS|ENGINES|INDEX|INDEXES|INDICES|KEYS)\b",
    re.IGNORECASE,
)

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


def check_format(name: str) -> None:
    """Raise `Refusal` unless `name` is an output format on the allow-list (formats are case-insensitive)."""
    if name.lower() not in ALLOWED_FORMATS:
        raise Refusal(ACCESS_DENIED, f"format {name} is not allowed on the query endpoint")


def check_database(name: str) -> None:
    """Raise `Refusal` for a current database whose unqualified tables are introspection (`system`)."""
    if name.lower() in _SYSTEM_DATABASES:
        raise Refusal(ACCESS_DENIED, f"database {name} cannot be the current database on the query endpoint")


def _skip_literal(text: str, i: int) -> int:
    """The index after the quoted literal or identifier starting at `text[i]`."""
    quote = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return i


def _read_value(text: str, i: int) -> int:
    """The index after one setting value: a literal, or a bracketed/braced expression, up to `,` at depth 0."""
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch in "'`\"":
            i = _skip_literal(text, i)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and (ch == "," or (ch == " " and text[i + 1:i + 2] != ",")):
            return i
        i += 1
    return i


_SETTINGS_ITEM_RE = re.compile(r"\s*(`(?:[^`\\]|\\.)*`|[A-Za-z_][A-Za-z0-9_]*)\s*=\s*")


def settings_clauses(normalized_sql: str) -> list[tuple[str, str]]:
    """Every `SETTINGS name = value, ...` pair in a normalized statement, in order, as (name, value text).

    Works on the engine's canonical single-line text (formatQuerySingleLine), skipping quoted literals and
    identifiers. A clause this misses is not a hole: `check_settings_clauses` compares the number of clauses
    found here with the engine's own count (`Set` nodes of EXPLAIN AST) and refuses the statement when they
    differ.
    """
    return _scan_settings(normalized_sql)[1]


def check_settings_clauses(normalized_sql: str, explain_ast: str) -> None:
    """Raise `Refusal` unless every SETTINGS clause the engine parsed was read by `settings_clauses`."""
    engine_count = sum(1 for node in parse_explain_ast(explain_ast) if node.kind == "Set")
    if engine_count != _scan_settings(normalized_sql)[0]:
        raise Refusal(ACCESS_DENIED, "a SETTINGS clause of this statement could not be checked")


def _scan_settings(normalized_sql: str) -> tuple[int, list[tuple[str, str]]]:
    """(number of SETTINGS clauses with at least one pair, the pairs)."""
    text = normalized_sql
    clauses = 0
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'`\"":
            i = _skip_literal(text, i)
            continue
        if (ch in "Ss" and text[i:i + 8].upper() == "SETTINGS" and (i == 0 or not (text[i - 1].isalnum()
                or text[i - 1] == "_")) and not (text[i + 8:i + 9].isalnum() or text[i + 8:i + 9] == "_")):
            j = i + 8
            first = True
            while True:
                match = _SETTINGS_ITEM_RE.match(text, j)
                if not match:
                    break
                clauses += first
                first = False
                name = match.group(1).strip("`")
                end = _read_value(text, match.end())
                found.append((name, text[match.end():end].strip()))
                j = end
                rest = text[j:]
                stripped = rest.lstrip()
                if not stripped.startswith(","):
                    break
                j += len(rest) - len(stripped) + 1
            i = j if j > i + 8 else i + 8
            continue
        i += 1
    return clauses, found


def _children(nodes: list[AstNode], index: int) -> list[AstNode]:
    """The direct children of `nodes[index]` (one level deeper, until the subtree ends)."""
    depth = nodes[index].depth
    out = []
    for node in nodes[index + 1:]:
        if node.depth <= depth:
            break
        if node.depth == depth + 1:
            out.append(node)
    return out


def _first_argument(nodes: list[AstNode], index: int) -> AstNode | None:
    """The first argument of the Function at `nodes[index]` (its ExpressionList's first child)."""
    for child in _children(nodes, index):
        if child.kind == "ExpressionList":
            args = _children(nodes, nodes.index(child, index))
            return args[0] if args else None
    return None


def _literal_text(node: AstNode) -> str:
    name = node.name
    if node.kind == "Literal" and name.startswith("\\'") and name.endswith("\\'"):
        return name[2:-2]
    return name.strip("'")


def _check_system_tables(nodes: list[AstNode]) -> None:
    """Refuse introspection readers must not see (other sessions' queries, errors, server paths)."""
    path_holding = False
    for node in nodes:
        if node.kind not in ("TableIdentifier", "Identifier") or "." not in node.name:
            continue
        database, _, table = node.name.partition(".")
        database, table = database.strip("`").lower(), table.strip("`").lower()
        if database in _SYSTEM_DATABASES:
            if table not in ALLOWED_SYSTEM_TABLES:
                raise Refusal(ACCESS_DENIED, f"system table {table} is not readable on the query endpoint")
            path_holding = path_holding or table in _PATH_HOLDING_TABLES
    if path_holding:
        for node in nodes:
            if node.kind in ("Asterisk", "QualifiedAsterisk") or "Matcher" in node.kind:
                raise Refusal(ACCESS_DENIED, "system.tables and system.databases are readable by column name only")
            if node.kind == "Identifier" and node.name.rpartition(".")[2].strip("`").lower() in _PATH_COLUMNS:
                raise Refusal(ACCESS_DENIED, f"column {node.name} holds a server path and is not readable")


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
    if root.kind.startswith("Show") and not _SHOW_ALLOWED_RE.match(normalized_sql.lstrip()):
        raise Refusal(ACCESS_DENIED, "this SHOW statement is not allowed on the query endpoint")
    fmt = output_format(normalized_sql)
    if fmt is not None:
        check_format(fmt)
    _check_system_tables(nodes)
    for index, node in enumerate(nodes):
        if node.kind.startswith(_WRITE_NODE_PREFIXES) and node.depth > 0:
            raise Refusal(READONLY, f"Cannot execute query in readonly mode ({node.kind})")
        if node.kind != "Function":
            continue
        name = node.name.lower()
        if name in OUTSIDE_FUNCTIONS:
            raise Refusal(ACCESS_DENIED, f"function {node.name} reaches outside the store and is not allowed")
        if node.parent_kind == "TableExpression" and name not in SAFE_TABLE_FUNCTIONS:
            raise Refusal(ACCESS_DENIED, f"table function {node.name} is not allowed on the read-only endpoint")
        if name in _FORMAT_ARGUMENT_FUNCTIONS and (node.parent_kind == "TableExpression" or name != "format"):
            first = _first_argument(nodes, index)
            if first is None or first.kind not in ("Identifier", "Literal"):
                raise Refusal(ACCESS_DENIED, f"function {node.name} needs a format named by a literal")
            check_format(_literal_text(first))
        if name == "merge" and node.parent_kind == "TableExpression":
            # a named database other than system, or the current one (which check_database keeps off system)
            first = _first_argument(nodes, index)
            current = first is not None and first.kind == "Function" and first.name.lower() == "currentdatabase"
            if not current and (first is None or first.kind not in ("Identifier", "Literal") or
                                _literal_text(first).lower() in _SYSTEM_DATABASES | _INFORMATION_SCHEMA):
                raise Refusal(ACCESS_DENIED, "merge() may only read a named database other than system")
