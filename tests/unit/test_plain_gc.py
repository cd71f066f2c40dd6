"""The OTLP path's test for plain gc lines (pipeline/normalize/plain_gc.py) against the engine path's SQL and the
reference: it recognises exactly the lines the Kafka engine path's `shape` regex recognises
(sql/fastpath/observed_stage.sql), and every line it calls plain is one the reference parses into a gc row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.normalize import runtime_lines as rl
from pipeline.normalize.plain_gc import (
    PLAIN_GC,
    PLAIN_GC_PATTERN,
    PLAIN_LINES_RE2,
    all_plain,
    is_plain,
    plain_text,
    python_form,
)

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


def _group_mutations(line: str) -> list[str]:
    """The places where an optional group of the pattern could give text back: the group present, absent, cut short
    or followed by what would fit if it gave back (a fraction dropped or doubled, the leak note, the stacks and globals
    pair, ` (forced)`, the blanks at the end)."""
    out = [re.sub(r"(\d+)\.\d+", r"\1", line, count=k) for k in (1, 3, 8)]
    out += [re.sub(r"(\d+\.\d+)", r"\1.5", line, count=1), line.replace(".", "..", 1)]
    out += [line.replace("%: ", "% (checking for goroutine leaks): ", 1),
            line.replace("%: ", "% (checking for goroutine leaks) : ", 1),
            line.replace("%: ", "% (checking for goroutine leaks): (checking for goroutine leaks): ", 1),
            line.replace("%: ", "% (checking for goroutine): ", 1)]
    out += [re.sub(r", \d+ MB stacks, \d+ MB globals", "", line), re.sub(r" MB globals", "", line),
            re.sub(r", (\d+) MB stacks", r", \1 MB stacks, \1 MB stacks", line),
            re.sub(r"(\d+ MB globals)", r"\1, 7 MB stacks, 7 MB globals", line),
            re.sub(r" MB goal", " MB goal, 12 P", line)]
    out += [line + " (forced)", line + " (forced) \t", line + " (forced) (forced)", line + " (forced", line + " \t\r",
            line + " x", line + " (forced)x"]
    return out


def test_possessive_form_recognises_the_same_lines() -> None:
    """PLAIN_GC runs the pattern with possessive digit runs and optional groups, digits spelled [0-9] (faster in
    Python's engine); it accepts exactly what the pattern as written (and as the SQL has it) accepts, wherever the
    match starts."""
    plain = re.compile(PLAIN_GC_PATTERN, re.ASCII)
    assert PLAIN_GC.pattern != PLAIN_GC_PATTERN and PLAIN_GC.pattern == python_form(PLAIN_GC_PATTERN)
    assert "?+" in PLAIN_GC.pattern and "\\d" not in PLAIN_GC.pattern
    lines = _lines()
    gc = [line for line in lines if line.startswith("gc ")]
    lines += [m for line in gc[:40] for m in _digit_mutations(line)]
    lines += ["  " + m for line in gc[40:60] for m in _digit_mutations(line)]
    lines += [m for line in gc[::20] for m in _group_mutations(line)]
    lines += ["ts=1 " + m for line in gc[::97] for m in _group_mutations(line)]
    accepted = 0
    for line in lines:
        expected = plain.search(line)
        got = PLAIN_GC.search(line)
        assert (got is None) == (expected is None), line
        if got is not None:
            assert got.span() == expected.span(), line  # type: ignore[union-attr]
            accepted += 1
    assert accepted > 3_000 and accepted < len(lines)


def test_plain_text_is_the_line_by_line_check_on_the_joined_lines() -> None:
    """`plain_text` checks the joined lines in one call: it gives the joined text exactly when every line is plain by
    `is_plain`, also for runs holding a prefixed line, a line that is not plain, a line with a line end of its own
    (two plain lines in one body: not plain, the engine would pair the lines with the wrong times), blanks at the
    ends, or nothing."""
    gc = [line for line in _lines() if line.startswith("gc ") and is_plain(line)]
    assert len(gc) > 3_000
    runs = [gc[:1000], gc[1000:1001], [*gc[2000:2500], gc[0] + " \t\r"]]
    for bad in ("x " + gc[1], gc[1] + "\n" + gc[2], gc[1] + "\n", "\n" + gc[1], "", "app: hello", gc[1] + " x",
                "\u00e9 " + gc[1], gc[1][:-1] + "\u0663", "2026-12-01T10:00:00Z " + gc[1]):
        for at in (0, 5, 9):
            runs.append([*gc[10:19][:at], bad, *gc[10:19][at:]])
    runs.append([])
    for run in runs:
        expected = "\n".join(run) if run and all(is_plain(line) for line in run) else None
        assert plain_text(run) == expected, run
        assert all_plain(run) is (expected is not None)
    assert plain_text(["2026-12-01T10:00:00Z " + gc[1], gc[2]]) == f"2026-12-01T10:00:00Z {gc[1]}\n{gc[2]}"
    assert plain_text([gc[1] + "\n" + gc[2]]) is None


def test_the_joined_check_in_re2_is_the_pattern_as_written_line_for_line() -> None:
    """RE2 runs the pattern as written (the engine's syntax) over joined lines: on one line it accepts exactly the
    lines Python's engine matches from their first character, every blank form at the end included."""
    plain = re.compile(PLAIN_GC_PATTERN, re.ASCII)
    gc = [line for line in _lines() if line.startswith("gc ")]
    lines = [*_lines(), *(m for line in gc[:40] for m in _digit_mutations(line)),
             *(m for line in gc[::20] for m in _group_mutations(line)),
             *(gc[0] + blank for blank in (" ", "\t", "\r", "\f", "\v", " \t\r\f\v", "\x0b\x0c", "\x1c", "\u00a0"))]
    accepted = 0
    for line in lines:
        if "\n" in line or not line.isascii():
            continue
        expected = plain.match(line) is not None
        assert (PLAIN_LINES_RE2.fullmatch(line.encode()) is not None) is expected, line
        accepted += expected
    assert 3_000 < accepted < len(lines)
    joined = "\n".join(gc[:50]).encode()
    assert PLAIN_LINES_RE2.fullmatch(joined) is not None
    assert PLAIN_LINES_RE2.fullmatch(joined + b"\n") is None and PLAIN_LINES_RE2.fullmatch(b"\n" + joined) is None
