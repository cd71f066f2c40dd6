"""bench/codec_variants.py: the codec rules the merge-cost bench compares rewrite exactly what they name."""

from __future__ import annotations

import pytest

from bench.codec_variants import chain, modify_clauses, rewrite


def test_chain_splits_on_top_level_commas_only() -> None:
    assert chain("CODEC(DoubleDelta, ZSTD(1))") == ["DoubleDelta", "ZSTD(1)"]
    assert chain("CODEC(Delta(8), ZSTD(3))") == ["Delta(8)", "ZSTD(3)"]
    assert chain("") == []
    with pytest.raises(ValueError):
        chain("ZSTD(1)")


@pytest.mark.parametrize(("rule", "codec", "expected"), [
    ("lz4", "CODEC(DoubleDelta, ZSTD(1))", "CODEC(DoubleDelta, LZ4)"),
    ("lz4", "CODEC(ZSTD(1))", "CODEC(LZ4)"),
    ("lz4_plain", "CODEC(Delta(4), ZSTD(1))", "CODEC(LZ4)"),
    ("zstd_plain", "CODEC(Delta(8), ZSTD(1))", "CODEC(ZSTD(1))"),
    ("zstd_plain", "CODEC(ZSTD(3))", "CODEC(ZSTD(3))"),
    ("none", "CODEC(DoubleDelta, ZSTD(1))", "CODEC(NONE)"),
    ("zstd", "CODEC(DoubleDelta, LZ4)", "CODEC(DoubleDelta, ZSTD(1))"),
    ("zstd", "CODEC(LZ4)", "CODEC(ZSTD(1))"),
    ("lz4", "", ""),
])
def test_rules(rule: str, codec: str, expected: str) -> None:
    assert rewrite(rule, codec) == expected


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown codec rule"):
        rewrite("brotli", "CODEC(ZSTD(1))")


def test_modify_clauses_touch_only_columns_whose_codec_changes() -> None:
    columns = [
        {"name": "ts", "type": "DateTime64(6, 'UTC')", "compression_codec": "CODEC(DoubleDelta, ZSTD(1))"},
        {"name": "forced", "type": "UInt8", "compression_codec": ""},
        {"name": "procs", "type": "UInt16", "compression_codec": "CODEC(ZSTD(1))"},
    ]
    assert modify_clauses("zstd_plain", columns) == ["MODIFY COLUMN ts DateTime64(6, 'UTC') CODEC(ZSTD(1))"]
    assert modify_clauses("lz4", columns) == ["MODIFY COLUMN ts DateTime64(6, 'UTC') CODEC(DoubleDelta, LZ4)",
                                              "MODIFY COLUMN procs UInt16 CODEC(LZ4)"]
