"""The engine side of the query endpoint: one reader's statement, checked, limited, streamed, cancellable.

The HTTP layer decodes a request into a `QueryRequest` and calls `EngineGateway.execute`, which returns a
`QueryResult` whose `chunks()` are the engine's own output bytes in the requested format, produced block by
block, so a large result never sits whole in memory. What makes it safe to run inside the process that holds
the store and takes in telemetry:

- every request runs on a fresh engine session over the store's path (chdb handles are cheap and a fresh one
  carries no earlier request's settings), checked by `sqlguard` and `reader_settings` (settings on an
  allow-list, in the URL and in every SETTINGS clause) and run with `readonly = 2`, so neither files nor the
  network nor the limits are within a reader's reach;
- at most `max_concurrent_queries` run at once; one more fails at once with TOO_MANY_SIMULTANEOUS_QUERIES
  (503 with Retry-After) instead of queueing threads and memory;
- each running query is tagged with an internal `log_comment`, so `cancel(query_id)` (the client hung up)
  and `close(timeout)` (shutdown) can stop it with `KILL QUERY` from another session; the thread serving it
  sees QUERY_WAS_CANCELLED and lets go of its session, and only then may the store be closed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import chdb

from pipeline.config import REPO_SQL_DIR
from pipeline.sqlfiles import load_statement
from pipeline.store import reader_settings, sqlguard
from pipeline.store.migrate import RenderContext
from pipeline.store.reader_settings import literal_value

log = logging.getLogger(__name__)

SERVER_NAME = "fleetwatch"
_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE_RE = re.compile(r"Code: (\d+)\.")
_NAME_RE = re.compile(r"\(([A-Z_]+)\)\s*$")
# The normalizing wrapper's own text in a syntax error: the reader is shown their statement, not ours.
_WRAPPER_RE = re.compile(r":? In scope SELECT formatQuerySingleLine\(.*?\)(?=\. \(|\s*$)", re.S)
_STREAM_PREFIX_RE = re.compile(r"^Streaming query failed:\s*")

UNKNOWN_SETTING = 115
SYNTAX_ERROR = 62
TOO_MANY_SIMULTANEOUS_QUERIES = 202
QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING = 216
QUERY_WAS_CANCELLED = 394
TOO_MANY_ROWS_OR_BYTES = 396

# ClickHouse's HTTP status for common exception codes (everything else is 500).
STATUS_BY_CODE: dict[int, int] = {
    192: 401, 193: 401, 194: 401, 516: 401,
    sqlguard.READONLY: 403, sqlguard.ACCESS_DENIED: 403,
    SYNTAX_ERROR: 400, 6: 400, 25: 400, 27: 400, 36: 400, 38: 400, 41: 400, 42: 400, 43: 400, 44: 400,
    53: 400, 69: 400, 70: 400, reader_settings.SETTING_CONSTRAINT_VIOLATION: 400,
    72: 400, 73: 400, UNKNOWN_SETTING: 400, 456: 400, 457: 400,
    16: 404, 46: 404, 47: 404, 60: 404, 81: 404, 85: 404,
    159: 504, 394: 500, 396: 413, TOO_MANY_SIMULTANEOUS_QUERIES: 503,
    QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING: 400, 241: 500,
}

# Formats whose output the engine can hand over block by block: each block's bytes follow the previous ones
# with no document prefix or suffix. Every other format is produced whole, in memory that counts toward the
# query's max_memory_usage (the engine's output buffer is tracked with the query).
STREAMED_FORMATS = frozenset(name.lower() for name in (
    "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "CSV", "JSONEachRow", "JSONLines", "JSONL", "NDJSON",
    "JSONStringsEachRow", "JSONCompactEachRow", "JSONCompactStringsEachRow", "Native", "RowBinary",
    "TSKV", "Null", "RawBLOB", "LineAsString", "MsgPack", "BSONEachRow", "PrettyJSONEachRow", "PrettyJSONLines",
    "PrettyNDJSON",
))
# Row formats with header lines: streamed too, the repeated header of every block after the first dropped.
HEADER_LINES = {
    **{name.lower(): 1 for name in (
        "TabSeparatedWithNames", "TSVWithNames", "TabSeparatedRawWithNames", "TSVRawWithNames",
        "JSONCompactEachRowWithNames", "JSONCompactStringsEachRowWithNames",
    )},
    **{name.lower(): 2 for name in (
        "TabSeparatedWithNamesAndTypes", "TSVWithNamesAndTypes", "TabSeparatedRawWithNamesAndTypes",
        "TSVRawWithNamesAndTypes", "JSONCompactEachRowWithNamesAndTypes",
        "JSONCompactStringsEachRowWithNamesAndTypes",
    )},
}

CONTENT_TYPES = {
    "JSON": "application/json", "JSONCompact": "application/json", "JSONStrings": "application/json",
    "JSONEachRow": "application/x-ndjson", "JSONCompactEachRow": "application/x-ndjson",
    "JSONCompactEachRowWithNamesAndTypes": "application/x-ndjson",
    "CSV": "text/csv", "CSVWithNames": "text/csv", "CSVWithNamesAndTypes": "text/csv",
    "TabSeparated": "text/tab-separated-values", "TSV": "text/tab-separated-values",
    "TSVWithNames": "text/tab-separated-values", "TabSeparatedWithNames": "text/tab-separated-values",
    "TSVWithNamesAndTypes": "text/tab-separated-values", "TabSeparatedWithNamesAndTypes": "text/tab-separated-values",
    "Pretty": "text/plain", "PrettyCompact": "text/plain", "Vertical": "text/plain", "Markdown": "text/markdown",
}


@functools.cache
def load_sql(relative: str) -> str:
    """One statement from `sql/` (these files use no database placeholder)."""
    return load_statement(REPO_SQL_DIR, relative, RenderContext(database="default", ttl_days=1))


class QueryFailure(Exception):
    """A request that ends in a ClickHouse-shaped error; `retry_after` (seconds) marks a try-again-later."""

    def __init__(self, code: int, message: str, name: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message
        self.retry_after = retry_after

    def body(self) -> str:
        if self.message.startswith("Code: "):
            return self.message
        suffix = f" ({self.name})" if self.name else ""
        return f"Code: {self.code}. DB::Exception: {self.message}.{suffix}"

    @property
    def status(self) -> int:
        """ClickHouse's HTTP status for this error code."""
        return STATUS_BY_CODE.get(self.code, 500)


def engine_failure(exc: Exception) -> QueryFailure:
    """Turn an engine exception into the error a ClickHouse server would have sent."""
    text = _STREAM_PREFIX_RE.sub("", str(exc))
    start = text.find("Code: ")
    message = text[start:].strip() if start >= 0 else text.strip()
    message = _WRAPPER_RE.sub("", message)
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


class QueryResult(Protocol):
    """What `EngineGateway.execute` hands the HTTP layer."""

    content_type: str
    headers: Mapping[str, str]  # X-ClickHouse-Format, -Timezone, -Query-Id

    def chunks(self) -> Iterator[bytes]:
        """The output in the requested format, block by block; an error after the first block ends it with
        the engine's `Code: N. DB::Exception: ...` text, as a ClickHouse server does."""
        ...

    def summary(self) -> Mapping[str, str]:
        """X-ClickHouse-Summary (read_rows, read_bytes, result_rows, result_bytes, elapsed_ns), once
        `chunks()` has ended."""
        ...

    def close(self) -> None:
        """Stop the query and free its slot, whether or not `chunks()` was read to the end."""
        ...


class _EngineSession(Protocol):
    """The part of a chdb connection the gateway uses."""

    def query(self, query: str, format: str = ..., params: Mapping[str, str] | None = ...) -> _EngineResult: ...

    def send_query(self, query: str, format: str = ..., params: Mapping[str, str] | None = ...) -> _EngineStream: ...

    def close(self) -> None: ...


class _EngineResult(Protocol):
    def bytes(self) -> bytes | None: ...

    def size(self) -> int: ...

    def rows_read(self) -> int: ...

    def bytes_read(self) -> int: ...

    def storage_rows_read(self) -> int: ...

    def storage_bytes_read(self) -> int: ...


class _EngineStream(Protocol):
    def fetch(self) -> _EngineResult | None: ...

    def cancel(self) -> None: ...


@dataclass
class _Counters:
    read_rows: int = 0
    read_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    # Bytes of formatted output: what the result-bytes limit is checked against (the engine's own count of a
    # block's bytes leaves out most of a String column).
    output_bytes: int = 0

    def add(self, result: _EngineResult) -> None:
        self.output_bytes += int(result.size())
        try:
            self.read_rows += int(result.storage_rows_read())
            self.read_bytes += int(result.storage_bytes_read())
            self.result_rows += int(result.rows_read())
            self.result_bytes += int(result.bytes_read())
        except (AttributeError, TypeError, ValueError):  # a result object without statistics
            pass


class _Running:
    """One running query: its session, its cancel tag, and the slot it holds until released."""

    def __init__(self, gateway: EngineGateway, query_id: str, conn: _EngineSession) -> None:
        self.gateway = gateway
        self.query_id = query_id
        self.tag = f"fleetwatch-reader:{uuid.uuid4()}"
        self.conn = conn
        self.cancelled = threading.Event()
        # Set once the reader's statement starts; before that a cancel only raises the flag (a KILL aimed at the
        # session's own setup statements would have nothing useful to stop).
        self.executing = threading.Event()
        self.done = threading.Event()
        # The result-bytes limit of this session: the engine does not enforce max_result_bytes on its output,
        # so the gateway counts the result blocks itself (0 = none, for the read-write mode).
        self.max_result_bytes = 0
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self.done.is_set():
                return
            self.done.set()
        try:
            self.conn.close()
        except Exception:  # the session is gone either way
            log.debug("closing a reader session failed", exc_info=True)
        self.gateway._finished(self)


class _Result:
    """A `QueryResult`: the first block (or the whole output) is already in hand; the rest is pulled on demand."""

    def __init__(self, running: _Running, fmt: str, timezone: str, stream: _EngineStream | None,
                 head: list[bytes], counters: _Counters, started: float) -> None:
        self.content_type = f"{CONTENT_TYPES.get(fmt, 'application/octet-stream')}; charset=UTF-8"
        self.headers: Mapping[str, str] = {
            "X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": timezone, "X-ClickHouse-Query-Id": running.query_id,
        }
        self._running = running
        self._stream = stream
        self._head = head
        self._counters = counters
        self._started = started
        self._elapsed_ns: int | None = None
        self._header_lines = HEADER_LINES.get(fmt.lower(), 0)
        self._ended = stream is None
        # Set when the query failed after its first block; the output then ends with the error text.
        self.failure: QueryFailure | None = None

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self._head
            self._head = []
            while self._stream is not None:
                if self._running.cancelled.is_set():
                    raise QueryFailure(QUERY_WAS_CANCELLED, "Query was cancelled", "QUERY_WAS_CANCELLED")
                try:
                    block = self._stream.fetch()
                except Exception as exc:
                    failure = engine_failure(exc)
                    self.failure = failure
                    self._ended = True
                    yield ("\n" + failure.body().rstrip("\n") + "\n").encode()
                    return
                if block is None:
                    self._ended = True
                    return
                self._counters.add(block)
                self._running.gateway._check_result_bytes(self._running, self._counters)
                data = block.bytes() or b""
                if self._header_lines:
                    data = _drop_lines(data, self._header_lines)
                if data:
                    yield data
        except QueryFailure as failure:
            self.failure = failure
            yield ("\n" + failure.body().rstrip("\n") + "\n").encode()
        finally:
            self._elapsed_ns = int((time.monotonic() - self._started) * 1e9)
            self.close()

    def summary(self) -> Mapping[str, str]:
        c = self._counters
        elapsed = self._elapsed_ns if self._elapsed_ns is not None else int((time.monotonic() - self._started) * 1e9)
        return {
            "read_rows": str(c.read_rows), "read_bytes": str(c.read_bytes), "written_rows": "0",
            "written_bytes": "0", "total_rows_to_read": str(c.read_rows), "result_rows": str(c.result_rows),
            "result_bytes": str(c.result_bytes), "elapsed_ns": str(elapsed),
        }

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and not self._ended and not self._running.done.is_set():
            # abandoned half-way: stop the engine before its session is closed under it
            self._running.gateway._kill(self._running)
        self._running.release()


def _drop_lines(data: bytes, count: int) -> bytes:
    """`data` without its first `count` lines (the header a text row format repeats on every block)."""
    for _ in range(count):
        cut = data.find(b"\n")
        if cut < 0:
            return b""
        data = data[cut + 1:]
    return data


class EngineGateway:
    """Runs readers' statements on fresh engine sessions over the store's path, within the reader limits."""

    def __init__(
        self, path: str, limits: reader_settings.ReaderLimits | None = None, *, max_concurrent_queries: int = 8,
        retry_after: float = 1.0,
    ) -> None:
        self.path = path if path.startswith(":memory:") else os.path.realpath(path)
        self.limits = limits or reader_settings.ReaderLimits()
        self.max_concurrent_queries = max_concurrent_queries
        self.retry_after = retry_after
        self._setting_names: frozenset[str] | None = None
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._idle = threading.Condition(self._lock)
        self._closing = False
        self._timezone: str | None = None

    # -- the interface the HTTP layer uses -------------------------------------------------------------------
    def execute(self, request: QueryRequest) -> QueryResult:
        """Check and start `request`; raises `QueryFailure` (with `retry_after` when the cap is reached)."""
        if not request.sql.strip():
            raise QueryFailure(SYNTAX_ERROR, "Empty query", "SYNTAX_ERROR")
        query_id = request.query_id or str(uuid.uuid4())
        running = self._admit(query_id)
        started = time.monotonic()
        try:
            sql, fmt, select = self._prepare(running, request)
            running.executing.set()
            if running.cancelled.is_set():
                raise QueryFailure(QUERY_WAS_CANCELLED, "Query was cancelled", "QUERY_WAS_CANCELLED")
            counters = _Counters()
            if select and (fmt.lower() in STREAMED_FORMATS or fmt.lower() in HEADER_LINES):
                stream = self._engine_stream(running.conn, sql, fmt, request.parameters)
                if running.cancelled.is_set():  # cancelled while the query was starting: its KILL found nothing
                    self._kill(running)
                first = self._first_block(stream)
                if first is None:
                    # An empty result: produced whole, so formats with a header still carry it.
                    result = self._engine(running.conn, sql, fmt, request.parameters)
                    counters.add(result)
                    head, stream_left = [result.bytes() or b""], None
                else:
                    counters.add(first)
                    self._check_result_bytes(running, counters)
                    head, stream_left = [first.bytes() or b""], stream
            else:
                result = self._engine(running.conn, sql, fmt, request.parameters)
                counters.add(result)
                self._check_result_bytes(running, counters)
                head, stream_left = [result.bytes() or b""], None
            return _Result(running, fmt, self.timezone(), stream_left, head, counters, started)
        except BaseException:
            running.release()
            raise

    def cancel(self, query_id: str) -> None:
        """Stop the running query with this id (the client went away); unknown ids are ignored."""
        with self._lock:
            running = self._running.get(query_id)
        if running is not None:
            running.cancelled.set()
            if running.executing.is_set():
                self._kill(running)

    def close(self, timeout: float) -> None:
        """Refuse new queries, cancel the running ones and wait (up to `timeout`) until every session is closed;
        after it returns the store may be closed."""
        with self._lock:
            self._closing = True
            running = list(self._running.values())
        for entry in running:
            entry.cancelled.set()
            if entry.executing.is_set():
                self._kill(entry)
        deadline = time.monotonic() + timeout
        while True:
            with self._idle:
                self._idle.wait_for(lambda: not self._running, min(0.5, max(0.0, deadline - time.monotonic())))
                left = list(self._running.values())
            if not left or time.monotonic() >= deadline:
                break
            for entry in left:  # a query that was still starting when it was first killed
                if entry.executing.is_set():
                    self._kill(entry)
        if left:
            log.warning("query endpoint: %d queries still running after %.1f s", len(left), timeout)

    def running_count(self) -> int:
        """Queries admitted and not yet finished (the ones counted against max_concurrent_queries)."""
        with self._lock:
            return len(self._running)

    def executing(self, query_id: str) -> bool:
        """Whether the query with this id has started on the engine (for waiting on state in tests)."""
        with self._lock:
            running = self._running.get(query_id)
        return running is not None and running.executing.is_set()

    def timezone(self) -> str:
        if self._timezone is None:
            conn = chdb.connect(self.path)
            try:
                text = conn.query(load_sql("queries/query_endpoint_timezone.sql"), "RawBLOB").bytes() or b""
                self._timezone = text.decode().strip() or "UTC"
            finally:
                conn.close()
        return self._timezone

    # -- admission and cancellation --------------------------------------------------------------------------
    def _admit(self, query_id: str) -> _Running:
        with self._lock:
            if self._closing:
                raise QueryFailure(TOO_MANY_SIMULTANEOUS_QUERIES, "The server is shutting down",
                                   "TOO_MANY_SIMULTANEOUS_QUERIES", retry_after=self.retry_after)
            if len(self._running) >= self.max_concurrent_queries:
                raise QueryFailure(
                    TOO_MANY_SIMULTANEOUS_QUERIES,
                    f"Too many simultaneous queries. Maximum: {self.max_concurrent_queries}",
                    "TOO_MANY_SIMULTANEOUS_QUERIES", retry_after=self.retry_after,
                )
            if query_id in self._running:
                raise QueryFailure(QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING,
                                   f"Query with id = {query_id} is already running.",
                                   "QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING")
            running = _Running(self, query_id, _placeholder_session())
            self._running[query_id] = running
        try:
            running.conn = chdb.connect(self.path)
        except BaseException:
            running.release()
            raise
        return running

    @staticmethod
    def _check_result_bytes(running: _Running, counters: _Counters) -> None:
        limit = running.max_result_bytes
        if limit and counters.output_bytes > limit:
            raise QueryFailure(
                TOO_MANY_ROWS_OR_BYTES,
                f"Limit for result exceeded, max bytes: {limit}, current bytes: {counters.output_bytes}",
                "TOO_MANY_ROWS_OR_BYTES",
            )

    def _finished(self, running: _Running) -> None:
        with self._idle:
            if self._running.get(running.query_id) is running:
                del self._running[running.query_id]
            self._idle.notify_all()

    def _kill(self, running: _Running) -> None:
        """KILL QUERY by the running query's tag, from a session of our own (never the reader's)."""
        conn = chdb.connect(self.path)
        try:
            conn.query(load_sql("queries/query_endpoint_kill.sql"), "TabSeparated", params={"tag": running.tag})
        except Exception:
            log.debug("query endpoint: KILL QUERY failed", exc_info=True)
        finally:
            conn.close()

    # -- preparing a session ---------------------------------------------------------------------------------
    def _prepare(self, running: _Running, request: QueryRequest) -> tuple[str, str, bool]:
        """Set up the session: the statement to run, its output format, whether it is a SELECT (streamable)."""
        conn = running.conn
        self._engine(conn, f"SET log_comment = {reader_settings.sql_literal(running.tag)}")
        if not request.read_only:  # writes allowed (trusted network): the limits are defaults here
            for name, literal in reader_settings.resolve({}, [], self.limits).items():
                self._engine(conn, f"SET {name} = {literal}")
            if request.database:
                self._engine(conn, f"USE {quote_identifier(request.database)}")
            for name, value in request.settings.items():
                if not _SETTING_NAME_RE.match(name):
                    raise QueryFailure(UNKNOWN_SETTING, f"Unknown setting '{name}'", "UNKNOWN_SETTING")
                literal = reader_settings.sql_literal(value)
                self._engine(conn, f"SET {name} = {literal}")
            return request.sql, sqlguard.output_format(request.sql) or request.default_format, False
        return self._guard(running, request)

    def _known_settings(self, conn: _EngineSession) -> frozenset[str]:
        if self._setting_names is None:
            text = (self._engine(conn, load_sql("queries/query_endpoint_setting_names.sql")).bytes() or b"").decode()
            self._setting_names = frozenset(text.split())
        return self._setting_names

    def _guard(self, running: _Running, request: QueryRequest) -> tuple[str, str, bool]:
        """Check a reader's statement and settings, then lock the session: the statement to run, its format.

        Order matters: the statement is normalized, its settings (URL, then the statement's own SETTINGS
        clauses) checked against the allow-list and applied with the endpoint's limits, the session becomes
        `readonly = 2` (no writes, no way back), and only then is the statement parsed (EXPLAIN AST, which
        applies the statement's top-level SETTINGS) and checked, including that every SETTINGS clause the
        engine saw was one the allow-list checked. (`readonly = 1` would also freeze settings in the engine,
        but clients read it from system.settings and then refuse to send any setting at all.)
        """
        conn = running.conn
        known = self._known_settings(conn)
        for name in request.settings:
            if name not in known and name != "readonly":
                raise QueryFailure(UNKNOWN_SETTING, f"Unknown setting '{name}'", "UNKNOWN_SETTING")
        sql = self._normalize(conn, request.sql)
        fmt = sqlguard.output_format(sql) or request.default_format
        try:
            sqlguard.check_database(request.database)
            sqlguard.check_format(fmt)
            settings = reader_settings.resolve(request.settings, sqlguard.settings_clauses(sql), self.limits)
        except sqlguard.Refusal as refusal:
            raise QueryFailure(refusal.code, f"{SERVER_NAME}: {refusal.message}", "ACCESS_DENIED") from None
        except reader_settings.SettingRefused as refused:
            raise QueryFailure(refused.code, refused.message, refused.name) from None
        for name, literal in settings.items():
            self._engine(conn, f"SET {name} = {literal}")
        running.max_result_bytes = int(float(literal_value(settings["max_result_bytes"])))
        if request.database:
            self._engine(conn, f"USE {quote_identifier(request.database)}")
        self._engine(conn, load_sql("queries/query_endpoint_lock.sql"))
        # Parsed only now: even EXPLAIN applies the statement's settings, and they have all been checked.
        explained = (self._engine(conn, f"EXPLAIN AST {sql}", "TabSeparated", request.parameters).bytes() or b"")
        ast = explained.decode()
        try:
            sqlguard.check_settings_clauses(sql, ast)
            sqlguard.check_read_only(sql, ast)
        except sqlguard.Refusal as refusal:
            name = "READONLY" if refusal.code == sqlguard.READONLY else "ACCESS_DENIED"
            raise QueryFailure(refusal.code, f"{SERVER_NAME}: {refusal.message}", name) from None
        return sql, fmt, ast.startswith(("SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery"))

    def _normalize(self, conn: _EngineSession, sql: str) -> str:
        """The engine's canonical single-statement text of `sql` (comments gone, one statement only)."""
        result = self._engine(conn, load_sql("queries/query_endpoint_normalize.sql"), "RawBLOB",
                              {"q": escape_param(sql)})
        return (result.bytes() or b"").decode().strip()

    @staticmethod
    def _engine(
        conn: _EngineSession, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None
    ) -> _EngineResult:
        try:
            return conn.query(sql, fmt, params=dict(params or {}))
        except Exception as exc:  # chdb raises RuntimeError subclasses carrying the ClickHouse message
            raise engine_failure(exc) from None

    @staticmethod
    def _engine_stream(
        conn: _EngineSession, sql: str, fmt: str, params: Mapping[str, str] | None = None
    ) -> _EngineStream:
        try:
            return conn.send_query(sql, fmt, params=dict(params or {}))
        except Exception as exc:
            raise engine_failure(exc) from None

    @staticmethod
    def _first_block(stream: _EngineStream) -> _EngineResult | None:
        try:
            return stream.fetch()
        except Exception as exc:
            raise engine_failure(exc) from None


class _NoSession:
    """Stands in for a session while the real one is being opened."""

    def query(self, query: str, format: str = "", params: Mapping[str, str] | None = None) -> _EngineResult:
        raise QueryFailure(1001, "no engine session", "STD_EXCEPTION")

    def send_query(self, query: str, format: str = "", params: Mapping[str, str] | None = None) -> _EngineStream:
        raise QueryFailure(1001, "no engine session", "STD_EXCEPTION")

    def close(self) -> None:
        return None


def _placeholder_session() -> _EngineSession:
    return _NoSession()


def summary_header(summary: Mapping[str, str]) -> str:
    return json.dumps(dict(summary), separators=(",", ":"))
