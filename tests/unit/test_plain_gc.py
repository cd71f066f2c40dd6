"""The OTLP path's test for plain gc lines (pipeline/normalize/plain_gc.py) against the engine path's SQL and the
reference: it recognises exactly the lines the Kafka engine path's `shape` regex recognises
(sql/fastpath/observed_stage.sql), and every line it calls plain is one the reference parses into a gc row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.normalize import runtime_lines as rl
from pipeline.normalize.plain_gc import PLAIN_GC, PLAIN_GC_PATTERN, all_plain, is_plain, possessive

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def _sql_shapes() -> list[re.Pattern[str]]:
    """The two `match` regexes of the stage's leak_form and shape columns, read as Python regexes."""
    text = (ROOT / "sql" / "fastpath" / "observed_stage.sql").read_text()
    found = re.findall(r"(leak_form|shape) +UInt8 MATERIALIZED (?:leak_form OR )?match\(line, '(.*?)'\)", text)
    assert [name for name, _ in found] == ["leak_form", "shape"]
    return [re.compile(pattern.replace("\\\\", "\\").replace("$", r"\Z"), re.ASCII) for _, pattern in found]


def _lines() -> list[str]:
    lines = [line for path in sorted((DATA / "go-runtime").glob("*.txt")) for line in path.read_text().splitlines()]
    lines += (DATA / "plumbing.txt").read_text().splitlines()
    gc = [line for line in lines if line.startswith("gc ")][:400]
    lines += [re.sub(r", \d+ MB stacks, \d+ MB globals", "", line) for line in gc]
    lines += [line + " \t\r" for line in gc[:50]] + ["x " + line for line in gc[:50]]
    lines += [line.replace(" MB goal", "0000000000000000000 MB goal") for line in gc[:50]]
    lines += [re.sub(r" \d+%", " 300%", line) for line in gc[:50]] + [line[:-3] for line in gc[:50]]
    return lines


def test_recognises_what_the_engine_paths_shape_recognises() -> None:
    shapes = _sql_shapes()
    lines = _lines()
    assert len(lines) > 10_000
    for line in lines:
        assert (PLAIN_GC.search(line) is not None) == any(s.search(line) for s in shapes), line


def test_every_plain_line_is_a_gc_row_for_the_reference() -> None:
    plain = [line for line in _lines() if is_plain(line)]
    assert len(plain) > 3_000
    for line in plain:
        assert rl.classify(line.rstrip("\r\n"))[0] == rl.GC, line


@pytest.mark.parametrize(("line", "plain"), [
    ("gc 1 @0.011s 2%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, 2 P", True),
    ("2026-12-01T10:00:00Z node gc 1 @0.011s 2%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, "
     "4->5->2 MB, 5 MB goal, 2 P", True),
    # A prefix that is not printable ASCII, or holds a runtime head, is left to the reference.
    ("\u00e9 gc 1 @0.011s 2%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, 2 P",
     False),
    ("scvg gc 1 @0.011s 2%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, 2 P",
     False),
    ("gc 1 @0.011s 2%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, 2 P x", False),
    # Unicode digits are not digits here (RE2's \d is ASCII).
    ("gc \u0661 @0.011s 2%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, 2 P",
     False),
])
def test_is_plain(line: str, plain: bool) -> None:
    assert is_plain(line) is plain
    assert all_plain([line]) is plain


def test_all_plain_needs_every_line() -> None:
    line = "gc 1 @0.011s 2%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, 2 P"
    assert all_plain([line, "x " + line])
    assert not all_plain([line, "app: hello"])
    assert not all_plain([])


def _digit_mutations(line: str) -> list[str]:
    """Each number of a gc line made one digit longer than its bound allows, one digit, or given a second dot:
    the places where a backtracking engine could give digits back."""
    out = []
    for found in re.finditer(r"\d+(?:\.\d+)?", line):
        a, b = found.span()
        for replacement in ("9" * 19, "7", found.group() + ".5", found.group() + "x", "1." + "0" * 13):
            out.append(line[:a] + replacement + line[b:])
    return out


def test_possessive_form_recognises_the_same_lines() -> None:
    """PLAIN_GC runs the pattern with possessive digit runs (faster in Python's engine); it accepts exactly what
    the pattern as written (and as the SQL has it) accepts, wherever the match starts."""
    plain = re.compile(PLAIN_GC_PATTERN, re.ASCII)
    assert PLAIN_GC.pattern != PLAIN_GC_PATTERN and PLAIN_GC.pattern == possessive(PLAIN_GC_PATTERN)
    lines = _lines()
    gc = [line for line in lines if line.startswith("gc ")]
    lines += [m for line in gc[:40] for m in _digit_mutations(line)]
    lines += ["  " + m for line in gc[40:60] for m in _digit_mutations(line)]
    accepted = 0
    for line in lines:
        expected = plain.search(line)
        got = PLAIN_GC.search(line)
        assert (got is None) == (expected is None), line
        if got is not None:
            assert got.span() == expected.span(), line  # type: ignore[union-attr]
            accepted += 1
    assert accepted > 3_000 and accepted < len(lines)
