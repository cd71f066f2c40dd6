"""Named rewrites of a table's column codecs, for bench/merge_cost.py's variants.

Why: whether gc_events' insert and merges get cheaper with other codecs is a question about the bytes the engine
compresses, decompresses and writes, so the bench compares copies of the migrated table whose codecs differ in
one rule at a time. A rule is a pure function of one column's codec chain as `system.columns.compression_codec`
spells it (`CODEC(DoubleDelta, ZSTD(1))`); it is applied to the columns that carry a codec in the migrated table
(the rest, LowCardinality and small flag columns, keep the engine's default, LZ4), so the copy differs from the
migrated table in that rule alone.
"""

from __future__ import annotations

from collections.abc import Callable

# Codecs that transform values before the compressor (the preprocessing half of a chain).
_PREPROCESSORS = ("Delta", "DoubleDelta", "Gorilla", "T64", "FPC")


def chain(codec: str) -> list[str]:
    """`CODEC(DoubleDelta, ZSTD(1))` -> ['DoubleDelta', 'ZSTD(1)']; '' -> []. Splits on top-level commas only."""
    text = codec.strip()
    if not text:
        return []
    if not (text.startswith("CODEC(") and text.endswith(")")):
        raise ValueError(f"not a codec chain: {codec!r}")
    body = text[len("CODEC("):-1]
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += (ch == "(") - (ch == ")")
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _name(codec: str) -> str:
    return codec.split("(", 1)[0]


def _is_preprocessor(codec: str) -> bool:
    return _name(codec) in _PREPROCESSORS


def _lz4(codecs: list[str]) -> list[str]:
    """ZSTD(n) -> LZ4, preprocessing (Delta, DoubleDelta) kept."""
    return ["LZ4" if _name(c) == "ZSTD" else c for c in codecs]


def _lz4_plain(codecs: list[str]) -> list[str]:
    """LZ4 alone: ZSTD -> LZ4 and no Delta/DoubleDelta."""
    return [c for c in _lz4(codecs) if not _is_preprocessor(c)] or ["LZ4"]


def _zstd_plain(codecs: list[str]) -> list[str]:
    """The chain's compressor alone: Delta/DoubleDelta dropped, ZSTD(1) kept."""
    return [c for c in codecs if not _is_preprocessor(c)] or ["ZSTD(1)"]


def _zstd(codecs: list[str]) -> list[str]:
    """LZ4 -> ZSTD(1), preprocessing kept: gc_events as it was before migration 116."""
    return ["ZSTD(1)" if _name(c) == "LZ4" else c for c in codecs]


def _none(codecs: list[str]) -> list[str]:
    return ["NONE"]


RULES: dict[str, Callable[[list[str]], list[str]]] = {
    "lz4": _lz4,
    "lz4_plain": _lz4_plain,
    "zstd_plain": _zstd_plain,
    "zstd": _zstd,
    "none": _none,
}


def rewrite(rule: str, codec: str) -> str:
    """One column's codec under `rule`: the `CODEC(...)` clause to give it ('' when it has none to rewrite)."""
    if rule not in RULES:
        raise ValueError(f"unknown codec rule {rule!r}; known: {', '.join(RULES)}")
    codecs = chain(codec)
    if not codecs:
        return ""
    return f"CODEC({', '.join(RULES[rule](codecs))})"


def modify_clauses(rule: str, columns: list[dict[str, str]]) -> list[str]:
    """`MODIFY COLUMN name Type CODEC(...)` for every column (dicts of name, type, compression_codec) that has a
    codec to rewrite under `rule`."""
    clauses = []
    for column in columns:
        new = rewrite(rule, column["compression_codec"])
        if new and new != column["compression_codec"]:
            clauses.append(f"MODIFY COLUMN {column['name']} {column['type']} {new}")
    return clauses
