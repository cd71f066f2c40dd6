"""Splitting text into lines the same way on every transport.

A line ends at `\n` only, with one `\r` before it removed (`\r\n` endings). `str.splitlines` is not used
because it also splits at U+0085, U+2028, U+2029, form feeds and other separators that application text
may contain: a log line holding one of them must stay one line, whichever transport it came by.
"""

from __future__ import annotations


def split_lines(text: str) -> list[str]:
    """`text` cut at `\n` (a final terminator does not make an empty last line), `\r\n` endings removed."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    if "\r" in text:
        parts = [p[:-1] if p.endswith("\r") else p for p in parts]
    return parts
