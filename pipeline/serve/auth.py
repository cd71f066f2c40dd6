"""Credentials, checked from the request line and headers alone, before any body byte is read.

Both checks compare in constant time (`hmac.compare_digest`) so response timing does not reveal how much
of a token matched. The bearer scheme is case-insensitive (RFC 9110 section 11.1: `bearer` is as valid as
`Bearer`); the token itself is compared exactly.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping


def bearer_ok(authorization: str | None, token: str | None) -> bool:
    """Whether an Authorization header value carries `token` (always true when no token is configured)."""
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    scheme_ok = hmac.compare_digest(scheme.lower().encode(), b"bearer")
    token_ok = hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())
    return scheme_ok and token_ok


def clickhouse_credentials(headers: Mapping[str, str], params: Mapping[str, str]) -> tuple[str, str]:
    """(user, password) the way ClickHouse's HTTP interface reads them: Basic auth, then X-ClickHouse-User /
    X-ClickHouse-Key, then the `user` / `password` URL parameters."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return user, password
    if headers.get("x-clickhouse-user"):
        return headers["x-clickhouse-user"], headers.get("x-clickhouse-key", "")
    return params.get("user", ""), params.get("password", "")


def clickhouse_ok(headers: Mapping[str, str], params: Mapping[str, str], user: str, password: str | None) -> bool:
    """Whether the request logs in as `user` with `password` (always true when no password is configured)."""
    if password is None:
        return True
    given_user, given_password = clickhouse_credentials(headers, params)
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return user_ok and password_ok
