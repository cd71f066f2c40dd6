"""The one door to ClickHouse.

Everything that reads or writes the store goes through `Store`, so nothing else in the code knows whether
it talks to the embedded engine (`chdb:///path`, chdb-core in this process) or to a server or cluster
(`http(s)://user:pass@host:8123/`). clickhouse-connect does the protocol, types and formats; this class only
adds what the pipeline needs on top: one client per thread (clients keep session state and are not
thread-safe), a uniform "store unavailable" error for retry decisions, and column-oriented inserts with
an optional deduplication token.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from clickhouse_connect.driver.query import QueryResult

from pipeline.config import Settings

log = logging.getLogger(__name__)

# ClickHouse error codes that mean "try again later" rather than "this statement is wrong".
_TRANSIENT_CODES = {
    "Code: 159.",  # TIMEOUT_EXCEEDED
    "Code: 209.",  # SOCKET_TIMEOUT
    "Code: 210.",  # NETWORK_ERROR
    "Code: 202.",  # TOO_MANY_SIMULTANEOUS_QUERIES
    "Code: 241.",  # MEMORY_LIMIT_EXCEEDED
    "Code: 242.",  # TABLE_IS_READ_ONLY
    "Code: 252.",  # TOO_MANY_PARTS
    "Code: 319.",  # UNKNOWN_STATUS_OF_INSERT
    "Code: 425.",  # SYSTEM_ERROR
    "Code: 999.",  # KEEPER_EXCEPTION
}


# How `Store.insert_select_lines` statements read their raw lines (input() on a server, file() embedded).
_INPUT_LINES = "input('line String')"
_FORMAT_LINES = "FORMAT LineAsString"
# How `Store.insert_select_input` finds its statement's input (a structure literal) and trailing input format.
_INPUT_RE = re.compile(r"input\('([A-Za-z0-9_ ,()]+)'\)")
_FORMAT_RE = re.compile(r"\bFORMAT\s+([A-Za-z]+)\s*\Z")

# Embedded store paths this process has opened: the engine keeps them locked until the process exits.
OPENED_HERE: set[str] = set()


class StoreError(Exception):
    """A statement failed for a reason that retrying will not fix (bad SQL, bad data)."""


class StoreUnavailable(Exception):
    """The store cannot be reached or is overloaded; the same request may succeed later."""


def embedded_path(dsn: str) -> str | None:
    """The filesystem path of a `chdb://` DSN, or None for a server DSN.

    Accepts `chdb:///abs/path`, `chdb://./relative/path` and `chdb://relative/path`; `chdb://memory`
    is an in-memory engine (tests and throw-away runs).
    """
    if not dsn.startswith("chdb://"):
        return None
    rest = dsn[len("chdb://") :]
    if rest in ("memory", ":memory:", ""):
        return ":memory:"
    return os.path.abspath(rest)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for logs and error messages."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return dsn


class Store:
    """A ClickHouse store reached through clickhouse-connect, embedded or remote."""

    def __init__(self, dsn: str, database: str, *, connect_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.database = database
        self.path = embedded_path(dsn)
        self.embedded = self.path is not None
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(settings.clickhouse_dsn, settings.database)

    def __repr__(self) -> str:
        return f"Store({redact_dsn(self.dsn)!r}, database={self.database!r})"

    # -- connections ---------------------------------------------------------------------------------
    def client(self) -> Client:
        """This thread's client, created on first use."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._connect()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _connect(self) -> Client:
        try:
            if self.path is not None:
                if self.path != ":memory:":
                    os.makedirs(self.path, exist_ok=True)
                client = clickhouse_connect.get_client(interface="chdb", path=self.path)
                OPENED_HERE.add(self.path)
                return client
            return clickhouse_connect.get_client(
                dsn=self.dsn, connect_timeout=self._connect_timeout, send_receive_timeout=300
            )
        except OperationalError as exc:
            raise StoreUnavailable(f"cannot reach ClickHouse at {redact_dsn(self.dsn)}: {exc}") from exc
        except DatabaseError as exc:
            raise StoreUnavailable(f"cannot open ClickHouse at {redact_dsn(self.dsn)}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # closing is best effort; the process may be exiting
                log.debug("closing a ClickHouse client failed", exc_info=True)
        self._local = threading.local()

    # -- statements ----------------------------------------------------------------------------------
    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        """Run a SELECT and return clickhouse-connect's typed result."""
        return self._call(lambda c: c.query(sql, parameters=parameters, settings=settings))

    def rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run a SELECT and return its rows as tuples."""
        return list(self.query(sql, parameters).result_rows)

    def dicts(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT and return its rows keyed by column name (fields by name, never by position)."""
        return list(self.query(sql, parameters).named_results())

    def scalar(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        rows = self.rows(sql, parameters)
        return rows[0][0] if rows else None

    def command(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run DDL or any statement whose result is not a table."""
        return self._call(lambda c: c.command(sql, parameters=parameters, settings=settings))

    def insert_columns(
        self,
        table: str,
        columns: Mapping[str, Sequence[Any]],
        *,
        dedup_token: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert one block given as columns; returns the row count.

        With `dedup_token`, ClickHouse drops a repeat of the same insert (same token, same table), which is
        what makes a replayed Kafka batch or a retried write land exactly once. Tables carry
        `non_replicated_deduplication_window` so this holds on the embedded engine too.
        """
        names = list(columns)
        if not names:
            return 0
        data = [columns[n] for n in names]
        count = len(data[0])
        if count == 0:
            return 0
        full_settings: dict[str, Any] = dict(settings or {})
        if dedup_token:
            full_settings["insert_deduplication_token"] = dedup_token
            full_settings["insert_deduplicate"] = 1
        qualified = table if "." in table else f"{self.database}.{table}"
        self._call(
            lambda c: c.insert(
                qualified, data, column_names=names, column_oriented=True, settings=full_settings
            )
        )
        return count

    def insert_raw(self, table: str, data: bytes, *, fmt: str = "JSONEachRow",
                   column_names: Sequence[str] | None = None, settings: Mapping[str, Any] | None = None) -> None:
        """Insert rows already encoded in a ClickHouse input format (a backtest scenario's exported files; the
        gctrace fast path's raw lines as `LineAsString`, into `column_names`): the engine parses them, so no
        Python object is built per row."""
        qualified = table if "." in table else f"{self.database}.{table}"
        self._call(lambda c: c.raw_insert(qualified, column_names=list(column_names) if column_names else None,
                                          insert_block=data, settings=dict(settings or {}), fmt=fmt))

    def insert_select_lines(self, sql: str, data: bytes | Sequence[bytes | memoryview] | Path, *,
                            parameters: Mapping[str, Any] | None = None,
                            settings: Mapping[str, Any] | None = None) -> None:
        """Run one `INSERT ... SELECT ... FROM input('line String') ... FORMAT LineAsString` over `data`, raw
        lines each ended by b"\\n" (one buffer, or the pieces of one in order, which are never joined here), so
        the engine parses and stores them in one statement (the gctrace fast path): no Python object per line.

        A server reads `data` as the request body, as input() expects. The embedded engine takes no body for
        input(), so the bytes go through a temporary file read by file() in the same format, which is what
        clickhouse-connect's own raw_insert does for the embedded engine. `data` may be a plain file of such lines
        (the file command's input, `FastGctraceStream.feed_file`), which the embedded engine then reads in place,
        with no copy. The engine reads every such file as it is, whatever its name ends with (compression 'none':
        file() would otherwise gunzip a file named *.gz, unzstd one named *.zst, ...)."""
        if _INPUT_LINES not in sql or not sql.rstrip().endswith(_FORMAT_LINES):
            raise ValueError(f"the statement must read {_INPUT_LINES} and end with {_FORMAT_LINES}")
        if not self.embedded:
            if isinstance(data, Path):
                body = data.read_bytes()
            else:
                body = b"".join([data] if isinstance(data, bytes | bytearray | memoryview) else data)
            self._call(lambda c: c.command(sql, parameters=parameters, data=body, settings=dict(settings or {})))
            return
        local = sql.rstrip()[:-len(_FORMAT_LINES)].replace(
            _INPUT_LINES, "file({fleetwatch_lines_file:String}, 'LineAsString', 'line String', 'none')")
        if isinstance(data, Path):
            in_place = {**(parameters or {}), "fleetwatch_lines_file": str(data.resolve())}
            self._call(lambda c: c.command(local, parameters=in_place, settings=dict(settings or {})))
            return
        pieces = [data] if isinstance(data, bytes | bytearray | memoryview) else data
        with tempfile.NamedTemporaryFile(prefix="fleetwatch-lines-", suffix=".txt") as tmp:
            for piece in pieces:
                tmp.write(piece)
            tmp.flush()
            params = {**(parameters or {}), "fleetwatch_lines_file": tmp.name}
            self._call(lambda c: c.command(local, parameters=params, settings=dict(settings or {})))

    def insert_select_input(self, sql: str, data: bytes | Path, *, parameters: Mapping[str, Any] | None = None,
                            settings: Mapping[str, Any] | None = None) -> None:
        """Run one `INSERT ... SELECT ... FROM input('<structure>') ... FORMAT <format>` over `data`, rows already
        encoded in that format (the OTLP writer's plain gc lines, RowBinary), as `insert_select_lines` does for
        raw lines: a server reads them as the request body; the embedded engine reads them from a file through
        file() with the same format and structure. `data` may be that file already (a journal segment,
        pipeline/journal.py), which the embedded engine then reads in place, with no copy."""
        found_input = _INPUT_RE.search(sql)
        found_format = _FORMAT_RE.search(sql.rstrip())
        if found_input is None or found_format is None:
            raise ValueError("the statement must read input('<structure>') and end with FORMAT <format>")
        if not self.embedded:
            body = data.read_bytes() if isinstance(data, Path) else data
            self._call(lambda c: c.command(sql, parameters=parameters, data=body, settings=dict(settings or {})))
            return
        fmt, structure = found_format.group(1), found_input.group(1)
        local = sql.rstrip()[:found_format.start()].replace(
            found_input.group(0), f"file({{fleetwatch_input_file:String}}, '{fmt}', '{structure}')")

        def run(path: str) -> None:
            params = {**(parameters or {}), "fleetwatch_input_file": path}
            self._call(lambda c: c.command(local, parameters=params, settings=dict(settings or {})))

        if isinstance(data, Path):
            run(str(data.resolve()))
            return
        with tempfile.NamedTemporaryFile(prefix="fleetwatch-input-", suffix=f".{fmt.lower()}") as tmp:
            tmp.write(data)
            tmp.flush()
            run(tmp.name)

    def export_raw(self, sql: str, parameters: Mapping[str, Any] | None = None, *,
                   fmt: str = "JSONEachRow", settings: Mapping[str, Any] | None = None) -> bytes:
        """Run a SELECT and return its result encoded in a ClickHouse output format."""
        return self._call(lambda c: c.raw_query(sql, parameters=parameters, fmt=fmt, settings=settings))

    @staticmethod
    def load_insert_libraries() -> None:
        """Import now the optional libraries clickhouse-connect looks for on its first insert (pandas, numpy,
        pyarrow, polars, when installed; chdb brings pandas and pyarrow): about 1.5 s of CPU and 60 MB, which a
        long-running process pays at start instead of inside the first request it answers."""
        from clickhouse_connect.driver import options

        for name in ("pd", "np", "arrow", "pl"):
            getattr(options, name, None)

    def ping(self) -> bool:
        try:
            self.command("SELECT 1")
            return True
        except (StoreUnavailable, StoreError):
            return False

    def _call(self, fn: Any) -> Any:
        try:
            return fn(self.client())
        except StoreUnavailable:
            raise
        except OperationalError as exc:
            self._drop_client()
            raise StoreUnavailable(str(exc)) from exc
        except DatabaseError as exc:
            text = str(exc)
            if any(code in text for code in _TRANSIENT_CODES):
                raise StoreUnavailable(text) from exc
            raise StoreError(text) from exc

    def _drop_client(self) -> None:
        """Forget this thread's client after a connection error so the next call reconnects."""
        client = getattr(self._local, "client", None)
        if client is not None:
            self._local.client = None
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
