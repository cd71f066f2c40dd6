"""Reading a request body within its limits, and the one bounded decompression layer.

Every route reads its body through `read_body`, after authentication: the declared Content-Length is
checked before a byte is read, a chunked body is counted while it arrives, the whole body must arrive within
`body_timeout_seconds`, and two Content-Length headers are refused. `read_body` is called only after the
credentials were checked, so an unauthenticated body is never read. uvicorn stops reading the socket while
the app is not asking for the body, so a refused request's body is never buffered beyond one read.

`decompress` is bounded in output bytes (a compression bomb costs at most the limit) and in the number of
gzip members, zstd frames and lz4 frames (each costs a new decoder, so 400,000 empty members would cost
seconds of CPU). zstd frames are counted on the wire by walking their block headers, before decoding.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from dataclasses import dataclass, field

import lz4.frame
import zstandard
from starlette.requests import ClientDisconnect, Request

_CHUNK = 256 * 1024
_DRAIN_FACTOR = 4
ENCODINGS = ("gzip", "x-gzip", "deflate", "zstd", "lz4")


@dataclass(eq=False)
class Refusal(Exception):
    """A request refused by the serving layer; each port renders it in its own protocol's error shape."""

    status: int
    message: str
    retry_after: float = 0.0
    close: bool = False  # the rest of the request may still be on the wire: do not reuse the connection
    clickhouse_code: int = 1001
    clickhouse_name: str = "STD_EXCEPTION"
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def too_large(message: str) -> Refusal:
    return Refusal(413, message, close=True, clickhouse_code=396, clickhouse_name="TOO_LARGE_REQUEST")


def bad_body(message: str, *, close: bool = False) -> Refusal:
    return Refusal(400, message, close=close, clickhouse_code=27, clickhouse_name="CANNOT_PARSE_INPUT")


def declared_length(request: Request) -> int | None:
    """The Content-Length, or None when absent (chunked); two differing values or garbage are refused."""
    values = [v for k, v in request.headers.raw if k == b"content-length"]
    if not values:
        return None
    if len(values) > 1:
        raise bad_body("more than one Content-Length header", close=True)
    try:
        length = int(values[0])
    except ValueError:
        raise bad_body("invalid Content-Length", close=True) from None
    if length < 0:
        raise bad_body("invalid Content-Length", close=True)
    return length


async def read_body(request: Request, *, max_bytes: int, timeout: float) -> bytes:
    """The raw (possibly compressed) body: at most `max_bytes`, all of it within `timeout` seconds."""
    length = declared_length(request)
    if length is not None and length > max_bytes:
        if length <= _DRAIN_FACTOR * max_bytes:
            # Authenticated and moderately oversized: read and drop it, so the client sees the 413 rather than
            # a reset connection (which exporters treat as transient and retry forever). Larger: close.
            await _drain(request, timeout)
        raise too_large(f"body of {length} bytes exceeds the {max_bytes}-byte limit")
    out = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                out += chunk
                if len(out) > max_bytes:
                    raise too_large(f"body exceeds the {max_bytes}-byte limit")
    except TimeoutError:
        raise Refusal(408, f"the body did not arrive within {timeout:g} s", close=True,
                      clickhouse_code=159, clickhouse_name="TIMEOUT_EXCEEDED") from None
    except ClientDisconnect:
        raise Refusal(400, "client disconnected", close=True) from None
    return bytes(out)


async def _drain(request: Request, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            async for _ in request.stream():
                pass
    except (TimeoutError, ClientDisconnect):
        pass


def decompress(body: bytes, encoding: str, *, limit: int, max_members: int) -> bytes:
    """Decompress `body` by its Content-Encoding; refuse (413) as soon as the output passes `limit`."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise too_large(f"body of {len(body)} bytes exceeds the {limit}-byte limit")
        return body
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, max_members)
    if encoding == "deflate":
        return _inflate(body, zlib.MAX_WBITS, limit, 1)
    if encoding == "zstd":
        count_zstd_frames(body, max_members)
        return _unzstd(body, limit)
    if encoding == "lz4":
        return _unlz4(body, limit, max_members)
    raise Refusal(400, f"unsupported Content-Encoding {encoding!r} (use gzip, deflate, zstd or lz4)",
                  clickhouse_code=1, clickhouse_name="UNKNOWN_ENCODING")


def _inflate(body: bytes, wbits: int, limit: int, max_members: int) -> bytes:
    out = bytearray()
    data = body
    members = 0
    try:
        while data:
            members += 1
            if members > max_members:
                raise too_large(f"compressed body has more than {max_members} members")
            inflater = zlib.decompressobj(wbits)
            while data:
                out += inflater.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise too_large(f"decompressed body exceeds the {limit}-byte limit")
                data = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                raise bad_body("truncated compressed body")
            data = inflater.unused_data  # another gzip member follows
    except zlib.error as exc:
        raise bad_body(f"invalid compressed body: {exc}") from None
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
                raise too_large(f"decompressed body exceeds the {limit}-byte limit")
    except zstandard.ZstdError as exc:
        raise bad_body(f"invalid zstd body: {exc}") from None
    return bytes(out)


_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE = 0x184D2A50  # ..0x184D2A5F: skippable frames, 4-byte magic + 4-byte length + payload
_ZSTD_BLOCK_RLE = 1
_ZSTD_BLOCK_RESERVED = 3


def count_zstd_frames(body: bytes, max_frames: int) -> int:
    """The number of zstd frames in `body`, found from the frame and block headers without decoding anything;
    refused (413) as soon as it passes `max_frames`. A frame cut short is refused (400) here: the streaming
    decoder would return its partial output without complaint. A header that does not parse is left to the
    decoder, which reports it (400)."""
    pos = 0
    frames = 0
    size = len(body)
    while pos < size:
        frames += 1
        if frames > max_frames:
            raise too_large(f"compressed body has more than {max_frames} zstd frames")
        if size - pos < 8:
            raise bad_body("truncated zstd body")
        magic = struct.unpack_from("<I", body, pos)[0]
        if magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
            pos += 8 + struct.unpack_from("<I", body, pos + 4)[0]
            if pos > size:
                raise bad_body("truncated zstd body")
            continue
        if magic != _ZSTD_MAGIC:
            return frames
        try:
            header = zstandard.frame_header_size(body[pos:pos + 18])
            checksum = zstandard.get_frame_parameters(body[pos:pos + header]).has_checksum
        except zstandard.ZstdError:
            return frames
        pos += header
        while pos + 3 <= size:
            block = int.from_bytes(body[pos:pos + 3], "little")
            kind = (block >> 1) & 3
            if kind == _ZSTD_BLOCK_RESERVED:
                return frames
            pos += 3 + (1 if kind == _ZSTD_BLOCK_RLE else block >> 3)
            if block & 1:  # last block of the frame
                break
        else:
            raise bad_body("truncated zstd body")
        pos += 4 if checksum else 0
        if pos > size:
            raise bad_body("truncated zstd body")
    return frames


def _unlz4(body: bytes, limit: int, max_members: int) -> bytes:
    out = bytearray()
    data = body
    members = 0
    try:
        while data:
            members += 1
            if members > max_members:
                raise too_large(f"compressed body has more than {max_members} frames")
            decoder = lz4.frame.LZ4FrameDecompressor()
            while not decoder.eof:
                out += decoder.decompress(data, max_length=limit + 1 - len(out))
                if len(out) > limit:
                    raise too_large(f"decompressed body exceeds the {limit}-byte limit")
                data = b""
                if not decoder.needs_input:
                    continue
                if not decoder.eof:
                    raise bad_body("truncated lz4 body")
            data = decoder.unused_data
    except RuntimeError as exc:
        raise bad_body(f"invalid lz4 body: {exc}") from None
    return bytes(out)
