"""Placeholder until this component is implemented: `start` returns None, so `run` skips it."""

from __future__ import annotations

from typing import Any


def start(ctx: Any) -> None:
    return None
