"""One mapping from what went wrong to what a client is told, for HTTP and for gRPC.

Exporters retry 429, 502, 503 and 504 (OTLP/HTTP) and RESOURCE_EXHAUSTED / UNAVAILABLE only with RetryInfo
(the Go SDK and the Collector drop the data otherwise). So every refusal caused by a limit or by a resource
running out (connections, threads, memory, file descriptors, writer back-pressure) is retryable and says when
to come back; only a request that can never succeed (bad body, wrong token, too large) is final.
"""

from __future__ import annotations

from http import HTTPStatus

import grpc

from pipeline.sources.otlp_export import Status
from pipeline.store.exhaustion import is_exhaustion

__all__ = ["GRPC_CODE", "HTTP_STATUS", "RETRYABLE_HTTP", "RPC_CODE_OF_HTTP", "is_exhaustion", "retry_after_header"]

HTTP_STATUS: dict[Status, HTTPStatus] = {
    Status.INVALID: HTTPStatus.BAD_REQUEST,
    Status.FULL: HTTPStatus.TOO_MANY_REQUESTS,
    Status.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    Status.FAILED: HTTPStatus.INTERNAL_SERVER_ERROR,
}

GRPC_CODE: dict[Status, grpc.StatusCode] = {
    Status.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Status.FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Status.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Status.FAILED: grpc.StatusCode.INTERNAL,
}

# google.rpc.Code carried in the google.rpc.Status body of an OTLP/HTTP error.
RPC_CODE_OF_HTTP: dict[int, int] = {
    400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 411: 3, 413: 8, 415: 3, 429: 8, 431: 8,
    500: 13, 503: 14, 504: 4,
}

RETRYABLE_HTTP = frozenset({408, 429, 502, 503, 504})

def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, round(seconds)))}
