"""OTLP/HTTP receiver (default 127.0.0.1:4318): POST /v1/logs, /v1/traces, /v1/metrics.

Bodies are protobuf (`application/x-protobuf`) or OTLP/JSON (`application/json`), optionally compressed
(`Content-Encoding: gzip`, `deflate` or `zstd`). The size limit (`otlp.max_request_bytes`) applies to the
decompressed body and is enforced while decompressing, so a small compression bomb costs at most the limit
before it is refused with 413. Answers follow the OTLP/HTTP specification: 200 with an Export*Response
(partial_success when something was quarantined), 400 with a google.rpc.Status for undecodable bodies,
429 + Retry-After when the writer is full, 503 when the store is unavailable or the receiver is stopping,
401 for a missing or wrong bearer token. Every answer is sent after the rows are stored.

The stdlib threading server is enough here: a request's cost is decoding and the wait for the insert,
and the writer merges concurrent requests into large inserts.
"""

from __future__ import annotations

import hmac
import io
import logging
import ssl
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import zstandard
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2

from pipeline.health import health_answer
from pipeline.normalize.otlp import OtlpDecodeError, Signal, decode_request
from pipeline.runtime import RunContext
from pipeline.sources.otlp_export import InFlight, Status, export, success_response

log = logging.getLogger(__name__)

SOURCE = "otlp_http"
PATHS: dict[str, Signal] = {"/v1/logs": "logs", "/v1/traces": "traces", "/v1/metrics": "metrics"}
_CHUNK = 256 * 1024
_DISCARD_LIMIT_FACTOR = 4
_HTTP_STATUS = {
    Status.INVALID: HTTPStatus.BAD_REQUEST,
    Status.FULL: HTTPStatus.TOO_MANY_REQUESTS,
    Status.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    Status.FAILED: HTTPStatus.INTERNAL_SERVER_ERROR,
}
_GRPC_CODE = {  # google.rpc.Code of the Status body
    HTTPStatus.BAD_REQUEST: 3, HTTPStatus.UNAUTHORIZED: 16, HTTPStatus.NOT_FOUND: 5,
    HTTPStatus.METHOD_NOT_ALLOWED: 12, HTTPStatus.REQUEST_ENTITY_TOO_LARGE: 8, HTTPStatus.TOO_MANY_REQUESTS: 8,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: 3, HTTPStatus.SERVICE_UNAVAILABLE: 14, HTTPStatus.INTERNAL_SERVER_ERROR: 13,
}


class RequestTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress `body`; raise RequestTooLarge as soon as the output passes `limit` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise RequestTooLarge(f"body of {len(body)} bytes exceeds the {limit}-byte limit")
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _inflate(body, 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS, limit)
    if encoding == "zstd":
        return _unzstd(body, limit)
    raise BadBody(f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or zstd)")


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    out = bytearray()
    data = body
    try:
        while data:
            inflater = zlib.decompressobj(wbits)
            while data:
                out += inflater.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise RequestTooLarge(f"decompressed body exceeds the {limit}-byte limit")
                data = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                raise BadBody("truncated compressed body")
            data = inflater.unused_data  # another gzip member follows
    except zlib.error as exc:
        raise BadBody(f"invalid compressed body: {exc}") from None
    return bytes(out)


def _unzstd(body: bytes, limit: int) -> bytes:
    out = bytearray()
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True)
        while True:
            chunk = reader.read(min(_CHUNK, limit + 1 - len(out)))
            if not chunk:
                break
            out += chunk
            if len(out) > limit:
                raise RequestTooLarge(f"decompressed body exceeds the {limit}-byte limit")
    except zstandard.ZstdError as exc:
        raise BadBody(f"invalid zstd body: {exc}") from None
    return bytes(out)


def _media_type(header: str | None) -> str | None:
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind in ("application/x-protobuf", "application/protobuf"):
        return "proto"
    if kind == "application/json":
        return "json"
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fleetwatch"
    sys_version = ""
    # Idle keep-alive connections are closed after this many seconds, so threads do not pile up.
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        health = health_answer(getattr(self.server.ctx, "health", None), self.path.split("?", 1)[0])
        if health is not None and self.command == "GET":
            status, body = health
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "OTLP/HTTP accepts POST only", "proto")

    do_PUT = do_DELETE = do_PATCH = do_GET

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        signal = PATHS.get(path)
        encoding = _media_type(self.headers.get("Content-Type"))
        answer_as = encoding or "proto"
        try:
            body = self._read_body()
        except RequestTooLarge as exc:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc), answer_as, close=True)
            return
        except BadBody as exc:
            self._refuse(HTTPStatus.BAD_REQUEST, str(exc), answer_as, close=True)
            return
        if signal is None:
            self._refuse(HTTPStatus.NOT_FOUND, f"no OTLP endpoint at {path}; use /v1/logs, /v1/traces or /v1/metrics",
                         answer_as)
            return
        if not self._authorized():
            self._refuse(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token", answer_as)
            return
        if encoding is None:
            self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                         "Content-Type must be application/x-protobuf or application/json", "proto")
            return
        try:
            raw = decompress(body, self.headers.get("Content-Encoding", ""), self.server.max_bytes)
            request = decode_request(signal, raw, encoding)
        except RequestTooLarge as exc:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc), encoding)
            return
        except (BadBody, OtlpDecodeError) as exc:
            self._refuse(HTTPStatus.BAD_REQUEST, str(exc), encoding)
            return
        if not self.server.inflight.enter():
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "shutting down; retry later", encoding, retry_after=1.0,
                         close=True)
            return
        try:
            outcome = export(signal, request, writer=self.server.ctx.writer, telemetry=self.server.ctx.telemetry,
                             source=SOURCE, location=f"http:{path}")
        finally:
            self.server.inflight.leave()
        if outcome.status is Status.OK:
            assert outcome.result is not None
            self._send(HTTPStatus.OK, success_response(signal, outcome.result), encoding)
            return
        retry = outcome.retry_after or (1.0 if outcome.status is Status.UNAVAILABLE else 0.0)
        self._refuse(_HTTP_STATUS[outcome.status], outcome.message, encoding, retry_after=retry)

    def _authorized(self) -> bool:
        expected = self.server.token
        if expected is None:
            return True
        given = (self.headers.get("Authorization") or "").encode()
        return hmac.compare_digest(given, expected)

    def _read_body(self) -> bytes:
        """The raw (possibly compressed) body, refusing anything above the limit before reading it."""
        limit = self.server.max_bytes
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadBody("invalid Content-Length") from None
        if length > limit:
            # Read and drop a moderately oversized body so the client sees the 413 rather than a broken
            # pipe (which exporters treat as a transient error and retry forever); close on anything larger.
            if length <= _DISCARD_LIMIT_FACTOR * limit:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            raise RequestTooLarge(f"body of {length} bytes exceeds the {limit}-byte limit")
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) != length:
            raise BadBody("body shorter than Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadBody("invalid chunked encoding") from None
            if size < 0:  # read(-1) would read to the end of the connection, past every limit
                raise BadBody("invalid chunk size")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            if len(out) + size > limit:
                raise RequestTooLarge(f"body exceeds the {limit}-byte limit")
            out += self.rfile.read(size)
            self.rfile.readline(1024)

    def _refuse(self, status: HTTPStatus, message: str, encoding: str, *, retry_after: float = 0.0,
                close: bool = False) -> None:
        body = status_pb2.Status(code=_GRPC_CODE.get(status, 2), message=message)
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else {}
        self._send(status, body, encoding, headers=headers, close=close)

    def _send(self, status: HTTPStatus, message: Message, encoding: str, *, headers: dict[str, str] | None = None,
              close: bool = False) -> None:
        if encoding == "json":
            payload = json_format.MessageToJson(message, indent=None).encode()
            content_type = "application/json"
        else:
            payload = message.SerializeToString()
            content_type = "application/x-protobuf"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close or self.server.inflight.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], ctx: RunContext, token: str | None, max_bytes: int) -> None:
        super().__init__(address, _Handler)
        self.ctx = ctx
        self.token = f"Bearer {token}".encode() if token else None
        self.max_bytes = max_bytes
        self.inflight = InFlight()


class HttpReceiver:
    name = "otlp http"

    def __init__(self, server: _Server, thread: threading.Thread, address: str) -> None:
        self.server = server
        self.thread = thread
        self.address = address

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self, timeout: float) -> None:
        """Stop accepting connections, then wait until every running request has been answered."""
        self.server.shutdown()
        self.server.server_close()
        if not self.server.inflight.drain(timeout):
            log.warning("otlp http: requests still running after %.0f s", timeout)
        self.thread.join(timeout)
        log.info("otlp http receiver on %s stopped", self.address)


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"OTLP/HTTP address must be host:port, not {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def start(ctx: RunContext) -> HttpReceiver | None:
    settings = ctx.settings.otlp
    address = (settings.http or "").strip()
    if not address:
        return None
    token = settings.token.get_secret_value() if settings.token else None
    server = _Server(parse_address(address), ctx, token, int(settings.max_request_bytes))
    if settings.tls_cert and settings.tls_key:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
        # The handshake happens on the first read, in the request thread, so a slow client cannot stall accept().
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="otlp-http",
                              daemon=True)
    thread.start()
    log.info("otlp http receiver listening on %s", address)
    return HttpReceiver(server, thread, address)
