"""One HTTP GET against a target that may be hostile or broken, with every limit enforced here.

* a deadline for the whole body, checked between reads (each read also times out), so a target trickling a
  byte at a time holds a worker at most about twice its timeout;
* a maximum body size, read no further than the limit + 1 byte;
* no redirects (a target cannot send the scraper elsewhere), no retries (the scheduler decides),
  no content decoding (the bytes are stored exactly as sent; the normalizer inflates gzip itself, bounded).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

_CHUNK = 64 * 1024
USER_AGENT = "fleetwatch-scraper"


@dataclass
class Fetched:
    status: str            # ok, not_supported, http_error, timeout, refused, too_large, error
    http_status: int = 0
    error: str = ""
    body: bytes = b""
    bytes: int = 0
    duration_ms: int = 0


def new_pool(max_connections: int) -> urllib3.PoolManager:
    return urllib3.PoolManager(num_pools=max(16, max_connections * 2), maxsize=1, block=False, retries=False)


def fetch(pool: urllib3.PoolManager, url: str, *, headers: Mapping[str, str], timeout: float,
          max_bytes: int) -> Fetched:
    start = time.monotonic()
    deadline = start + timeout

    def done(result: Fetched) -> Fetched:
        result.duration_ms = int((time.monotonic() - start) * 1000)
        return result

    request_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
    try:
        resp = pool.request("GET", url, headers=request_headers, preload_content=False, redirect=False,
                            retries=False, decode_content=False,
                            timeout=urllib3.Timeout(connect=timeout, read=timeout))
    except NewConnectionError as exc:  # before ConnectTimeoutError: urllib3 derives it from that class
        status = "timeout" if "timed out" in str(exc).lower() else "refused"
        return done(Fetched(status, error=_short(exc)))
    except (ConnectTimeoutError, ReadTimeoutError) as exc:
        return done(Fetched("timeout", error=_short(exc)))
    except (HTTPError, OSError) as exc:
        status = "timeout" if "timed out" in str(exc).lower() else "error"
        return done(Fetched(status, error=_short(exc)))
    try:
        if resp.status == 404:
            return done(Fetched("not_supported", http_status=404, error="404: the target does not serve this profile"))
        if resp.status != 200:
            return done(Fetched("http_error", http_status=resp.status, error=f"HTTP {resp.status} {resp.reason or ''}"))
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            return done(Fetched("too_large", http_status=200, bytes=int(declared), error=(
                f"Content-Length {declared} exceeds pprof.scrape_max_response_bytes ({max_bytes})")))
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return done(Fetched("timeout", http_status=200, bytes=size,
                                    error=f"body not complete after {timeout:g}s ({size} bytes read)"))
            chunk = resp.read1(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                return done(Fetched("too_large", http_status=200, bytes=size,
                                    error=f"body exceeds pprof.scrape_max_response_bytes ({max_bytes})"))
            chunks.append(chunk)
        body = b"".join(chunks)
        return done(Fetched("ok", http_status=200, body=body, bytes=len(body)))
    except (ReadTimeoutError, TimeoutError) as exc:
        return done(Fetched("timeout", http_status=resp.status, error=_short(exc)))
    except (ProtocolError, HTTPError, OSError) as exc:
        return done(Fetched("error", http_status=resp.status, error=_short(exc)))
    finally:
        resp.close()  # never reused: a hostile target's connection is not worth keeping


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
