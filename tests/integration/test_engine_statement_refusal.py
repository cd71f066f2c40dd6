"""The file path's one-statement batch (sql/fastpath/gctrace_chunk.sql) refuses a batch with a line it does not take,
whatever garbage that line's numbers make.

Why: the recognition (sql/fastpath/gc_recognise.sql) computes the form flags and numbers of every line without
testing `recognised` first, so the fields of an unrecognised line are parsed from whatever numbers it holds (too
many, too long, none). The statement must still end in its own refusal (the caller takes the span path on that
message only), with nothing stored, and never in another engine error or a stored row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.sources.gctrace_fast import NOT_CLEAN
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store, StoreError
from pipeline.store.migrate import context_from_settings
from tests.conftest import DATA

START_US = int((datetime.now(UTC) - timedelta(hours=2)).timestamp()) * 1_000_000
GC_LINE = ("gc 7 @0.300s 0%: 0.017+0.078+0.001 ms clock, 0.035+0/0.054/0.040+0.003 ms cpu, 64->64->0 MB, "
           "129 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)")

HOSTILE = {
    "torn, forty 23-digit numbers": "gc 1 @0.1s 1%: " + " ".join(["99999999999999999999999"] * 40),
    "@T of 25 digits": GC_LINE.replace("@0.300s", "@9999999999999999999999999.300s"),
    "a heap figure of 30 digits": GC_LINE.replace("64->64->0 MB", "64->64->" + "9" * 30 + " MB"),
    "a float in exponent form": GC_LINE.replace("0.017+", "1e5+"),
    "no numbers": "hello from the application",
    "empty": "",
    "invalid UTF-8 before the gc line": "\udcff\udcfe " + GC_LINE,
    "a gc cycle number of ten digits": GC_LINE.replace("gc 7 @", "gc 4294967296 @"),
}


def _gc_lines() -> list[str]:
    text = (DATA / "go-runtime" / "go1.27.3-storm.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.startswith("gc ")]


def _params() -> dict[str, object]:
    return {"service": "api", "instance": "refusal", "source": "file", "received_ms": 0, "start_us": START_US,
            "incarnation": 0, "last_num": -1, "last_since_us": -1}


def _batch(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def _stored(store: Store) -> int:
    return int(store.scalar(f"SELECT count() FROM {store.database}.gc_events"))


def test_a_clean_batch_is_stored_whole(settings, store) -> None:
    lines = _gc_lines()
    assert len(lines) > 20
    sql = load_statement(settings.sql_dir, "fastpath/gctrace_chunk.sql", context_from_settings(settings))
    store.insert_select_lines(sql, _batch(lines), parameters=_params())
    assert _stored(store) == len(lines)


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_batch_with_one_line_not_taken_is_refused_with_nothing_stored(settings, store, hostile) -> None:
    lines = _gc_lines()
    middle = len(lines) // 2
    sql = load_statement(settings.sql_dir, "fastpath/gctrace_chunk.sql", context_from_settings(settings))
    with pytest.raises(StoreError) as refused:
        store.insert_select_lines(sql, _batch([*lines[:middle], hostile, *lines[middle:]]), parameters=_params())
    assert NOT_CLEAN in str(refused.value)
    assert _stored(store) == 0
