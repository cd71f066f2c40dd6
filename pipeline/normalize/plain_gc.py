"""Which runs of lines are plain gc summary lines, so their rows can be made by the engine instead of Python.

Why: the reference normalizer (`normalize.gctrace`) costs about 5 CPU microseconds per gc line in Python (a
regex with 21 groups, eighteen conversions, a tuple), which bounds the OTLP receivers far below what the store
takes. A regex match without groups costs about a fifth of that, and ClickHouse reads the fields of a line it is
told is plain far faster than Python does (sql/fastpath/otlp_gc_insert.sql). So the OTLP log mapping asks
`all_plain` of one resource's lines; when every line is a plain gc line, none of them can be anything else for
the reference either (no application output, no repair, no quarantine: the numbers are bounded to fit their
columns), so the lines go to the engine as they are, with their observed times, in `GC_LINES_TABLE`; otherwise
the whole resource goes through the reference, exactly as before.

`PLAIN_GC` is the engine path's recognition (sql/fastpath/observed_stage.sql: `shape`, the leak-check form
folded in as an optional group) with a stricter prefix: everything before the match printable ASCII, where the
engine looks only up to the first runtime head, and no head in it. Stricter is safe: a line it refuses goes to the
reference.
tests/unit/test_plain_gc.py pins the pattern against the SQL file; tests/integration/test_otlp_gc_engine.py
proves the rows equal the reference's.

The check runs once per log record on the OTLP receivers' hot path, so a resource's lines are checked joined, in one
call to RE2 (google-re2: a DFA, about half the CPU of Python's engine on these lines, and the GIL released while it
runs), which also yields the text the engine is handed (`plain_text`); what it refuses is decided line by line by
Python's engine, the definition, in the same language's cheapest form for it (`python_form`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import re2

from pipeline.normalize.gctrace import GC_TABLE
from pipeline.normalize.rows import WEIGHT

# The pseudo-table the OTLP mapping fills with plain gc lines, one row per resource of a request (its lines joined
# by "\n", one observed time in unix ns per line); the sink writes it into GC_TABLE through the engine.
GC_LINES_TABLE: Final = f"{GC_TABLE}:lines"
GC_LINES_COLUMNS: Final = ("service", "instance", "source", "received_ms", "observed_ns", "text", WEIGHT)

_MS: Final = r"\d{1,12}(?:\.\d+)?"
# The same text as the SQL's `shape` regex (observed_stage.sql), non-capturing, with its leak-check form as the
# optional group; anchored at the end of the line, searched from anywhere (the prefix is checked apart).
PLAIN_GC_PATTERN: Final = (
    r"gc \d{1,9} @\d{1,10}\.\d+s (?:\d{1,2}|1\d\d|2[0-4]\d|25[0-5])%(?: \(checking for goroutine leaks\))?: "
    rf"{_MS}\+{_MS}\+{_MS} ms clock, {_MS}\+{_MS}/{_MS}/{_MS}\+{_MS} ms cpu, "
    r"\d{1,18}->\d{1,18}->\d{1,18} MB, \d{1,18} MB goal(?:, \d{1,18} MB stacks, \d{1,18} MB globals)?, "
    r"\d{1,4} P(?: \(forced\))?[ \t\r\f\v]*\Z"
)


def possessive(pattern: str) -> str:
    r"""The same pattern with its digit runs (`\d{1,N}`, `\d+`), its trailing blank run and its optional groups made
    possessive (Python 3.11+): they never give characters back. Every such run is followed by a character it cannot
    match (a digit run by a non-digit literal or the end, the blanks by the end), and every optional group of
    PLAIN_GC_PATTERN by text that cannot start where the group started (a fraction `.5` by `+`, ` ` or `/`; the
    leak-check note by `: `; the stacks and globals pair by `, N P`, which ` MB stacks` breaks; ` (forced)` by blanks
    and the end), so giving back never makes a match, and the language is unchanged; the pct alternation (`\d{1,2}|`)
    is left as it is. Python's backtracking engine then skips the backtracking states (docs/benchmarks.md, "OTLP:
    the transport's and the store's bounds" and "OTLP receivers: the request workers' Python per record"); the SQL
    keeps the plain text, which RE2 runs without backtracking. Not a general rewrite: it holds for this pattern, which
    tests/unit/test_plain_gc.py checks line for line (and match span) against the pattern as written."""
    pattern = re.sub(r"(\\d\{1,\d+\}|\\d\+|\[ \\t\\r\\f\\v\]\*)(?![|+?])", r"\1+", pattern)
    return re.sub(r"(?<!\\)\)\?(?![+?])", ")?+", pattern)


def python_form(pattern: str) -> str:
    r"""`possessive(pattern)` with `\d` spelled `[0-9]`: the same set under re.ASCII, tested by a charset lookup where
    `\d` calls the category function, so about a tenth cheaper per line in Python's engine."""
    return possessive(pattern).replace(r"\d", "[0-9]")


# re.ASCII: \d is [0-9] as in RE2, not every Unicode digit.
PLAIN_GC: Final = re.compile(python_form(PLAIN_GC_PATTERN), re.ASCII)


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.never_capture = True  # a yes or no is all that is asked
    return options


# Lines joined by "\n", every one plain from its first character: the pattern as written (RE2's syntax: the engine's
# own regex text; \d is ASCII in RE2), then again after each line end, matched over the whole text (`fullmatch`, on
# its UTF-8 bytes). One call checks a whole resource.
_LINE: Final = PLAIN_GC_PATTERN.removesuffix(r"\Z")
PLAIN_LINES_RE2: Final = re2.compile(rf"{_LINE}(?:\n{_LINE})*", _re2_options())
# A line whose match starts at 0 needs no prefix check; one with a prefix is plain when the prefix is printable
# ASCII (a log shipper's timestamp, a container runtime's tag) and holds no runtime head (runtime_lines._HEADS), so
# the engine's prefix (the text before the first head) is exactly the text before the gc line.
_PRINTABLE: Final = re.compile(r"[ -~]*\Z", re.ASCII)
_HEADS: Final = re.compile(r"gc #?\d+ @|(?:forced )?scvg|scav \d|pacer: ", re.ASCII)


def is_plain(line: str) -> bool:
    """One line: a Go 1.6+ gc summary line, numbers within their columns, after a printable-ASCII prefix."""
    match = PLAIN_GC.search(line)
    if match is None:
        return False
    start = match.start()
    return start == 0 or (_PRINTABLE.match(line, 0, start) is not None and _HEADS.search(line, 0, start) is None)


def all_plain(lines: Sequence[str]) -> bool:
    """Whether every line is plain (False for none)."""
    return plain_text(lines) is not None


def plain_text(lines: Sequence[str]) -> str | None:
    """The lines joined by "\n" when every one is plain, else None (also for none): what the engine is handed.

    The common case, ASCII lines that start with `gc `, is checked on the joined text with one RE2 call (its bytes:
    ASCII text encodes by copy, where RE2 would map every character of a str); a line holding a "\n" of its own
    would pass that as two lines, so the line ends are counted too (a plain line holds none). Anything else (a
    prefixed line, a line that is not plain, text that is not ASCII) falls back to `is_plain` line by line, which is
    the definition."""
    if not lines:
        return None
    text = "\n".join(lines)
    if (text.isascii() and PLAIN_LINES_RE2.fullmatch(text.encode()) is not None
            and text.count("\n") == len(lines) - 1):
        return text
    return text if all(map(is_plain, lines)) else None
