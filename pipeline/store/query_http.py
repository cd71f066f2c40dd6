"""The ClickHouse HTTP interface, served by `fleetwatch run` over its embedded store.

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

import base64
import gzip
import hmac
import io
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import chdb

from pipeline.health import Health, health_answer
from pipeline.store import sqlguard

if TYPE_CHECKING:  # the starter's type only; this HTTP door belongs above the store (see the import contracts)
    from pipeline.runtime import RunContext

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


class EngineGateway:
    """Runs one request on a fresh engine session over the store's path."""

    def __init__(self, path: str) -> None:
        self.path = path if path.startswith(":memory:") else os.path.realpath(path)

    def timezone(self) -> str:
        conn = chdb.connect(self.path)
        try:
            return conn.query("SELECT timezone()", "RawBLOB").bytes().decode().strip() or "UTC"
        finally:
            conn.close()

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


# -- compression -------------------------------------------------------------------------------------------
def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=3)
    if encoding == "deflate":
        return zlib.compress(body, 3)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(body)
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.compress(body)
    raise ValueError(encoding)


def decompress(body: bytes, encoding: str, limit: int | None = None) -> bytes:
    """Decompress a request body, refusing (413) as soon as the output passes `limit` bytes: a small
    compression bomb must not be able to fill the memory of the process that holds the store."""
    limit = MAX_BODY_BYTES if limit is None else limit
    if encoding in ("", "identity"):
        out = body
    elif encoding in ("gzip", "deflate"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise QueryFailure(BAD_BODY, f"Cannot decompress the {encoding} body: {exc}", "CANNOT_DECOMPRESS") from None
    elif encoding == "zstd":
        import zstandard

        try:
            out = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read(limit + 1)
        except zstandard.ZstdError as exc:
            raise QueryFailure(BAD_BODY, f"Cannot decompress the zstd body: {exc}", "CANNOT_DECOMPRESS") from None
    elif encoding == "lz4":
        import lz4.frame

        try:
            out = lz4.frame.LZ4FrameDecompressor().decompress(body, max_length=limit + 1)
        except RuntimeError as exc:
            raise QueryFailure(BAD_BODY, f"Cannot decompress the lz4 body: {exc}", "CANNOT_DECOMPRESS") from None
    else:
        raise QueryFailure(1, f"Unsupported Content-Encoding: {encoding}", "UNKNOWN_ENCODING")
    if len(out) > limit:
        raise QueryFailure(BODY_TOO_LARGE, f"Request body exceeds {limit} bytes", "TOO_LARGE_REQUEST")
    return out


_SUPPORTED_ENCODINGS = ("lz4", "zstd", "gzip", "deflate")


def pick_encoding(accept_encoding: str) -> str | None:
    """The first encoding the client lists that we can produce (clients list their preference first)."""
    for item in accept_encoding.split(","):
        name = item.split(";")[0].strip().lower()
        if name in _SUPPORTED_ENCODINGS:
            return name
    return None


# -- HTTP ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointConfig:
    database: str
    read_only: bool
    user: str
    password: str | None
    timezone: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fleetwatch"
    gateway: EngineGateway
    config: EndpointConfig
    health: Health | None = None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve(read_only=True)

    def do_POST(self) -> None:
        self._serve(read_only=self.config.read_only)

    def _serve(self, *, read_only: bool) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            body = self._read_body()
        except QueryFailure as failure:
            self.close_connection = True  # the rest of the body may still be on the wire
            self._send_failure(failure, "")
            return
        health = health_answer(self.health, parts.path)
        if health is not None:
            self._send(health[0], health[1], {"Content-Type": "application/json"})
            return
        if parts.path in ("/ping", "/replicas_status") or (parts.path == "/" and "query" not in params and not body):
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            if parts.path != "/":
                raise QueryFailure(1, f"There is no handle {parts.path}", "UNKNOWN_HANDLE")
            self._authenticate(params)
            request = self._request(params, body, read_only=read_only, query_id=query_id)
            answer = self.gateway.run(request)
        except QueryFailure as failure:
            self._send_failure(failure, query_id)
            return
        except Exception as exc:
            log.exception("query endpoint request failed")
            self._send_failure(QueryFailure(1001, f"{type(exc).__name__}: {exc}", "STD_EXCEPTION"), query_id)
            return
        headers = {
            "Content-Type": f"{_CONTENT_TYPES.get(answer.output_format, 'application/octet-stream')}; charset=UTF-8",
            "X-ClickHouse-Format": answer.output_format,
            "X-ClickHouse-Summary": json.dumps(answer.summary, separators=(",", ":")),
        }
        self._send(200, answer.body, headers, query_id=query_id, params=params)

    def _read_body(self) -> bytes:
        """The request body, decompressed; at most MAX_BODY_BYTES are ever read or produced."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise QueryFailure(BAD_BODY, "Invalid chunked encoding", "CANNOT_PARSE_INPUT") from None
                if size < 0:
                    raise QueryFailure(BAD_BODY, "Invalid chunk size", "CANNOT_PARSE_INPUT")
                if size == 0:
                    self.rfile.readline(1024)
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise QueryFailure(BODY_TOO_LARGE, f"Request body exceeds {MAX_BODY_BYTES} bytes",
                                       "TOO_LARGE_REQUEST")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            raw = b"".join(chunks)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise QueryFailure(BAD_BODY, "Invalid Content-Length", "CANNOT_PARSE_INPUT") from None
            if length > MAX_BODY_BYTES:
                raise QueryFailure(BODY_TOO_LARGE, f"Request body exceeds {MAX_BODY_BYTES} bytes", "TOO_LARGE_REQUEST")
            raw = self.rfile.read(length) if length > 0 else b""
        return decompress(raw, self.headers.get("Content-Encoding", "").lower()) if raw else raw

    def _authenticate(self, params: Mapping[str, str]) -> None:
        if self.config.password is None:
            return
        user, password = params.get("user"), params.get("password")
        if self.headers.get("X-ClickHouse-User"):
            user, password = self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                user, password = None, None
        user_ok = hmac.compare_digest((user or "").encode(), self.config.user.encode())
        password_ok = hmac.compare_digest((password or "").encode(), self.config.password.encode())
        if not (user_ok and password_ok):
            raise QueryFailure(
                AUTHENTICATION_FAILED,
                f"{user or 'default'}: Authentication failed: password is incorrect, "
                "or there is no user with such name",
                "AUTHENTICATION_FAILED",
            )

    def _request(self, params: Mapping[str, str], body: bytes, *, read_only: bool, query_id: str) -> QueryRequest:
        text = params.get("query", "")
        if body:
            decoded = body.decode("utf-8", errors="replace")
            text = f"{text}\n{decoded}" if text else decoded
        database = params.get("database") or self.headers.get("X-ClickHouse-Database") or self.config.database
        settings = {k: v for k, v in params.items() if k not in _TRANSPORT_PARAMS and not k.startswith("param_")}
        parameters = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
        return QueryRequest(
            sql=text, database=database, default_format=params.get("default_format") or "TabSeparated",
            settings=settings, parameters=parameters, read_only=read_only, query_id=query_id,
        )

    def _send_failure(self, failure: QueryFailure, query_id: str) -> None:
        text = failure.body().rstrip("\n") + "\n"
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(failure.code)}
        self._send(failure.status, text.encode(), headers, query_id=query_id)

    def _send(
        self, status: int, body: bytes, headers: Mapping[str, str], *, query_id: str = "",
        params: Mapping[str, str] | None = None,
    ) -> None:
        encoding = None
        if params is not None and params.get("enable_http_compression") == "1":
            encoding = pick_encoding(self.headers.get("Accept-Encoding", ""))
        if encoding:
            body = compress(body, encoding)
        self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else None)
        for name, value in headers.items():
            self.send_header(name, value)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if query_id:
            self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Timezone", self.config.timezone)
        self.send_header("X-ClickHouse-Server-Display-Name", SERVER_NAME)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


class QueryEndpoint:
    """The running endpoint: a threaded HTTP server; each request runs on its own thread."""

    name = "query endpoint"

    def __init__(
        self, address: str, gateway: EngineGateway, config: EndpointConfig, health: Health | None = None
    ) -> None:
        host, port = parse_address(address)
        handler = type("Handler", (_Handler,), {"gateway": gateway, "config": config, "health": health})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (_Server,), {"address_family": family})
        self.server = server_class((host, port), handler)
        self.address = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="query-http", daemon=True)

    def start(self) -> QueryEndpoint:
        self._thread.start()
        return self

    def stop(self, timeout: float) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout)


def start(ctx: RunContext) -> QueryEndpoint | None:
    """Serve the embedded store over HTTP; off for a server DSN (query the server) or an empty address."""
    settings = ctx.settings
    if not settings.embedded or not settings.query.http or ctx.store.path is None:
        return None
    gateway = EngineGateway(ctx.store.path)
    password = settings.query.password.get_secret_value() if settings.query.password else None
    config = EndpointConfig(
        database=settings.database, read_only=settings.query.read_only, user=settings.query.user,
        password=password, timezone=gateway.timezone(),
    )
    started = time.monotonic()
    endpoint = QueryEndpoint(settings.query.http, gateway, config, ctx.health).start()
    log.info(
        "query endpoint on http://%s (%s) in %.0f ms", endpoint.address,
        "read-only" if config.read_only else "read-write", (time.monotonic() - started) * 1000,
    )
    return endpoint
