"""The engine side of the ClickHouse HTTP interface served by `fleetwatch run` over its embedded store
(the HTTP side is pipeline/serve/query.py).

The embedded engine lives inside the pipeline process, so no other program can open its files; this endpoint
is how clickhouse-connect, curl, Grafana's ClickHouse data source, `fleetwatch sql` and `fleetwatch triage`
read it while the pipeline runs. It speaks the subset of ClickHouse's HTTP protocol those clients use:

- `GET|POST /?query=...` with the POST body appended to the `query` parameter (ClickHouse semantics),
  `database`, `default_format`, `param_<name>` query parameters, `query_id`, any other parameter as a setting;
- the engine's own output bytes in whatever format was asked for (FORMAT clause, else `default_format`,
  else TabSeparated), so every client's decoder works unchanged;
- response compression (lz4 frame, zstd, gzip, deflate) when `enable_http_compression=1` and Accept-Encoding
  ask for it; the X-ClickHouse-* headers clients read; errors as `Code: N. DB::Exception: ...` with
  X-ClickHouse-Exception-Code and ClickHouse's HTTP status for that code; `/ping` and `/` answer `Ok.`.

Read-only by default: each request gets a fresh engine session pinned to `readonly = 2` (no INSERT, no DDL,
no way back to readonly = 0) and the statement must pass `sqlguard.check_read_only` (no table functions or
functions that reach files, URLs or other servers, no INTO OUTFILE). Sessions are per request because chdb
connection handles are cheap (about a millisecond), share the engine with the pipeline's `Store`, and a
fresh one can never carry a previous request's settings or database.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import chdb

from pipeline.store import sqlguard

log = logging.getLogger(__name__)

SERVER_NAME = "fleetwatch"

# Parameters that steer the HTTP layer; every other parameter is applied as an engine setting.
_TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "role", "stacktrace", "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "http_zlib_compression_level",
    "http_native_compression_disable_checksumming_on_decompress",
    "default_role",
})
_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE_RE = re.compile(r"Code: (\d+)\.")
_NAME_RE = re.compile(r"\(([A-Z_]+)\)\s*$")

UNKNOWN_SETTING = 115
BAD_BODY = 27
BODY_TOO_LARGE = 396
# The largest request body (after decompression) read into memory; queries are text, far below this.
MAX_BODY_BYTES = 64 * 1024 * 1024
AUTHENTICATION_FAILED = 516
SYNTAX_ERROR = 62

# ClickHouse's HTTP status for common exception codes (everything else is 500).
_STATUS_BY_CODE: dict[int, int] = {
    192: 401, 193: 401, 194: 401, AUTHENTICATION_FAILED: 401,
    sqlguard.READONLY: 403, sqlguard.ACCESS_DENIED: 403,
    SYNTAX_ERROR: 400, 6: 400, 25: 400, 27: 400, 36: 400, 38: 400, 41: 400, 42: 400, 43: 400, 44: 400,
    53: 400, 69: 400, 70: 400, 72: 400, 73: 400, UNKNOWN_SETTING: 400, 456: 400, 457: 400,
    16: 404, 46: 404, 47: 404, 60: 404, 81: 404, 85: 404,
    159: 504, 394: 500, BODY_TOO_LARGE: 413,
}

_CONTENT_TYPES = {
    "JSON": "application/json", "JSONCompact": "application/json", "JSONStrings": "application/json",
    "JSONEachRow": "application/x-ndjson", "JSONCompactEachRow": "application/x-ndjson",
    "JSONCompactEachRowWithNamesAndTypes": "application/x-ndjson",
    "CSV": "text/csv", "CSVWithNames": "text/csv", "CSVWithNamesAndTypes": "text/csv",
    "TabSeparated": "text/tab-separated-values", "TSV": "text/tab-separated-values",
    "TSVWithNames": "text/tab-separated-values", "TabSeparatedWithNames": "text/tab-separated-values",
    "TSVWithNamesAndTypes": "text/tab-separated-values", "TabSeparatedWithNamesAndTypes": "text/tab-separated-values",
    "Pretty": "text/plain", "PrettyCompact": "text/plain", "Vertical": "text/plain", "Markdown": "text/markdown",
}


class QueryFailure(Exception):
    """A request that ends in a ClickHouse-shaped error response."""

    def __init__(self, code: int, message: str, name: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    def body(self) -> str:
        if self.message.startswith("Code: "):
            return self.message
        suffix = f" ({self.name})" if self.name else ""
        return f"Code: {self.code}. DB::Exception: {self.message}.{suffix}"

    @property
    def status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 500)


def engine_failure(exc: Exception) -> QueryFailure:
    """Turn an engine exception into the error a ClickHouse server would have sent."""
    text = str(exc)
    start = text.find("Code: ")
    message = text[start:].strip() if start >= 0 else text.strip()
    match = _CODE_RE.search(message)
    name = _NAME_RE.search(message)
    return QueryFailure(int(match.group(1)) if match else 1001, message, name.group(1) if name else "")


def escape_param(value: str) -> str:
    """Escape a value for a `{name:String}` query parameter, which the engine reads with TSV escaping."""
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r").replace("\0", "\\0")
    )


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass
class QueryRequest:
    """One request, decoded from the HTTP layer."""

    sql: str
    database: str
    default_format: str = "TabSeparated"
    settings: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    read_only: bool = True
    query_id: str = ""


@dataclass
class QueryAnswer:
    body: bytes
    output_format: str
    summary: dict[str, str]


class BufferedResult:
    """A finished query's output as the serving layer reads it (`chunks`, then `summary`)."""

    def __init__(self, answer: QueryAnswer, query_id: str, timezone: str) -> None:
        self.answer = answer
        self.content_type = f"{_CONTENT_TYPES.get(answer.output_format, 'application/octet-stream')}; charset=UTF-8"
        self.headers = {"X-ClickHouse-Format": answer.output_format, "X-ClickHouse-Query-Id": query_id,
                        "X-ClickHouse-Timezone": timezone}

    def chunks(self) -> Iterator[bytes]:
        if self.answer.body:
            yield self.answer.body

    def summary(self) -> Mapping[str, str]:
        return self.answer.summary


class EngineGateway:
    """Runs one request on a fresh engine session over the store's path."""

    def __init__(self, path: str) -> None:
        self.path = path if path.startswith(":memory:") else os.path.realpath(path)
        self._timezone: str | None = None

    def timezone(self) -> str:
        conn = chdb.connect(self.path)
        try:
            return conn.query("SELECT timezone()", "RawBLOB").bytes().decode().strip() or "UTC"
        finally:
            conn.close()

    def execute(self, request: QueryRequest) -> BufferedResult:
        """Run `request`; raises QueryFailure. The serving layer calls this on a worker thread."""
        if self._timezone is None:
            self._timezone = self.timezone()
        return BufferedResult(self.run(request), request.query_id, self._timezone)

    def cancel(self, query_id: str) -> None:
        """Stop a running query whose client went away (a buffered run cannot be stopped part-way)."""
        log.debug("query %s abandoned by its client", query_id)

    def run(self, request: QueryRequest) -> QueryAnswer:
        if not request.sql.strip():
            raise QueryFailure(SYNTAX_ERROR, "Empty query", "SYNTAX_ERROR")
        conn = chdb.connect(self.path)
        try:
            if request.read_only:
                self._engine(conn, "SET readonly = 2")
            if request.database:
                self._engine(conn, f"USE {quote_identifier(request.database)}")
            self._apply_settings(conn, request)
            sql = request.sql
            if request.read_only:
                sql = self._normalize(conn, sql)
                ast = self._engine(conn, f"EXPLAIN AST {sql}", "TabSeparated", request.parameters).bytes().decode()
                try:
                    sqlguard.check_read_only(sql, ast)
                except sqlguard.Refusal as refusal:
                    name = "READONLY" if refusal.code == sqlguard.READONLY else "ACCESS_DENIED"
                    raise QueryFailure(refusal.code, f"{SERVER_NAME}: {refusal.message}", name) from None
            fmt = sqlguard.output_format(sql) or request.default_format
            result = self._engine(conn, sql, fmt, request.parameters)
            body = result.bytes() or b""
            return QueryAnswer(body, fmt, _summary(result, len(body)))
        finally:
            conn.close()

    def _apply_settings(self, conn: Any, request: QueryRequest) -> None:
        for name, value in request.settings.items():
            if not _SETTING_NAME_RE.match(name):
                raise QueryFailure(UNKNOWN_SETTING, f"Unknown setting '{name}'", "UNKNOWN_SETTING")
            if name == "readonly" and request.read_only and value in ("1", "2"):
                continue  # asking for read-only on a read-only session changes nothing
            if request.read_only:
                try:
                    sqlguard.check_setting(name)
                except sqlguard.Refusal as refusal:
                    raise QueryFailure(refusal.code, f"{SERVER_NAME}: {refusal.message}", "ACCESS_DENIED") from None
            literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            self._engine(conn, f"SET {name} = {literal}")

    def _normalize(self, conn: Any, sql: str) -> str:
        """The engine's canonical single-statement text of `sql` (comments gone, one statement only)."""
        result = self._engine(conn, "SELECT formatQuerySingleLine({q:String})", "RawBLOB", {"q": escape_param(sql)})
        return result.bytes().decode().strip()

    @staticmethod
    def _engine(conn: Any, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None) -> Any:
        try:
            return conn.query(sql, fmt, params=dict(params or {}))
        except Exception as exc:  # chdb raises RuntimeError subclasses carrying the ClickHouse message
            raise engine_failure(exc) from None


def _summary(result: Any, result_bytes: int) -> dict[str, str]:
    try:
        read_rows, read_bytes, elapsed = result.rows_read(), result.bytes_read(), result.elapsed()
    except Exception:
        read_rows, read_bytes, elapsed = 0, 0, 0.0
    return {
        "read_rows": str(read_rows), "read_bytes": str(read_bytes), "written_rows": "0", "written_bytes": "0",
        "total_rows_to_read": str(read_rows), "result_rows": "0", "result_bytes": str(result_bytes),
        "elapsed_ns": str(int(elapsed * 1e9)),
    }


