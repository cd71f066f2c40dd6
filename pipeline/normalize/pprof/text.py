"""Goroutine dumps as text: `?debug=1` (counts per stack), `?debug=2` and the tracebacks a Go process
prints at SIGQUIT or an unrecovered panic (one block per goroutine).

`debug=1` blocks are `N @ 0x.. 0x..` followed by `#\t0xPC\tfunction+0xOFF\tfile:line` frames. `debug=2`
and tracebacks share the runtime's traceback format (src/runtime/traceback.go, goroutineheader):

    goroutine 42 [chan send, 37 minutes]:
    main.settle(...)
    \t/app/main.go:51 +0x3c
    created by main.run in goroutine 1
    \t/app/main.go:88 +0x105

The header may carry `gp=.. m=.. mp=..` (GOTRACEBACK=system or a runtime throw), the state may end in
` (leaked)` (Go 1.26+: the goroutineleak GC proved it unreachable), ` (scan)` or ` (durable)`, and after
the state come `, N minutes` (waited at least a minute) and `, locked to thread`. Go before 1.21 prints
`created by F` without `in goroutine G`. Text around the blocks (the panic message, register dumps,
`exit status 2`) is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

Frame = tuple[str, str, int]  # (function, file, line)

# Labels set with pprof.Do follow the state: ` {k: v}` after the brackets (1.27) or ` labels:{...}` inside.
_HEADER_RE = re.compile(r"^goroutine (\d+)(?: gp=\S+)?(?: m=\S+)?(?: mp=\S+)? \[(.*?)\](?: \{.*\})?:\s*$")
_FILE_LINE_RE = re.compile(r"^\t(.*?):(\d+)(?: \+0x[0-9a-f]+)?(?: fp=.*)?\s*$")
_CREATED_RE = re.compile(r"^created by (\S+?)(?: in goroutine \d+)?\s*$")
_DEBUG1_HEAD_RE = re.compile(r"^(\w+) profile: total (\d+)\s*$")
_DEBUG1_COUNT_RE = re.compile(r"^(\d+) @(?: 0x[0-9a-f]+)*\s*$")
_DEBUG1_FRAME_RE = re.compile(r"^#\t0x[0-9a-f]+\t(.+?)\+0x[0-9a-f]+\t(.*):(\d+)\s*$")
_MINUTES_RE = re.compile(r"^(\d+) minutes$")
_STATE_SUFFIXES = (" (leaked)", " (scan)", " (durable)")


@dataclass
class Goroutine:
    """One goroutine block of a debug=2 dump or traceback."""

    goid: int
    state: str
    wait_minutes: int
    leaked: bool
    frames: list[Frame] = field(default_factory=list)
    created_by: Frame = ("", "", 0)


@dataclass
class CountedStack:
    """One block of a debug=1 profile: how many goroutines share this stack."""

    count: int
    frames: list[Frame]


@dataclass
class Debug1:
    profile_type: str      # the name in the first line: goroutine, goroutineleak, threadcreate, ...
    total: int
    stacks: list[CountedStack]


class TextError(ValueError):
    """The text is not a goroutine dump Fleetwatch can read; the message is the quarantine reason."""


def looks_like_debug1(text: str) -> bool:
    first = text.lstrip()[:200].split("\n", 1)[0]
    return _DEBUG1_HEAD_RE.match(first) is not None


def has_goroutine_blocks(text: str) -> bool:
    return any(_HEADER_RE.match(line) for line in text.splitlines())


def starts_with_goroutine_block(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    return _HEADER_RE.match(first) is not None


def function_name(call: str) -> str:
    """`main.(*T).run(0xc000010000, {0x1, 0x2})` -> `main.(*T).run`: the arguments are the final (...)."""
    call = call.strip()
    if not call.endswith(")"):
        return call
    depth = 0
    for i in range(len(call) - 1, -1, -1):
        ch = call[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if depth == 0:
                return call[:i]
    return call


def parse_state(raw: str) -> tuple[str, int, bool]:
    """`chan receive (leaked), 12 minutes, locked to thread` -> ('chan receive', 12, True)."""
    labels = raw.find("labels:{")
    if labels >= 0:
        raw = raw[:labels].rstrip(" ,")
    parts = [p.strip() for p in raw.split(",")]
    state = parts[0] if parts else ""
    minutes = 0
    for part in parts[1:]:
        m = _MINUTES_RE.match(part)
        if m:
            minutes = int(m.group(1))
    leaked = False
    changed = True
    while changed:
        changed = False
        for suffix in _STATE_SUFFIXES:
            if state.endswith(suffix):
                leaked = leaked or suffix == " (leaked)"
                state = state[: -len(suffix)]
                changed = True
    return state, minutes, leaked


def parse_goroutines(text: str, max_goroutines: int) -> list[Goroutine]:
    """Every goroutine block in `text` (debug=2 or a traceback); other text is skipped."""
    out: list[Goroutine] = []
    current: Goroutine | None = None
    pending_call: str | None = None
    pending_created: str | None = None
    for line in text.splitlines():
        header = _HEADER_RE.match(line)
        if header:
            if len(out) >= max_goroutines:
                raise TextError(f"more than {max_goroutines} goroutines (limit pprof.max_samples)")
            state, minutes, leaked = parse_state(header.group(2))
            current = Goroutine(goid=int(header.group(1)), state=state, wait_minutes=minutes, leaked=leaked)
            out.append(current)
            pending_call = pending_created = None
            continue
        if current is None:
            continue
        if not line.strip():
            current = None
            continue
        if line.startswith("\t"):
            loc = _FILE_LINE_RE.match(line)
            if loc is None:
                continue
            file, lineno = loc.group(1), int(loc.group(2))
            if pending_created is not None:
                current.created_by = (pending_created, file, lineno)
            elif pending_call is not None:
                current.frames.append((function_name(pending_call), file, lineno))
            pending_call = pending_created = None
            continue
        created = _CREATED_RE.match(line)
        if created:
            pending_created, pending_call = created.group(1), None
            continue
        if line.startswith("...") or line.startswith("[originating from"):
            continue
        pending_call, pending_created = line, None
    return out


def parse_debug1(text: str, max_stacks: int) -> Debug1:
    """A `?debug=1` count profile: its name, total and counted stacks."""
    lines = text.lstrip().splitlines()
    head = _DEBUG1_HEAD_RE.match(lines[0]) if lines else None
    if head is None:
        raise TextError("not a debug=1 profile: first line is not '<name> profile: total N'")
    stacks: list[CountedStack] = []
    current: CountedStack | None = None
    for line in lines[1:]:
        count = _DEBUG1_COUNT_RE.match(line)
        if count:
            if len(stacks) >= max_stacks:
                raise TextError(f"more than {max_stacks} stacks (limit pprof.max_samples)")
            current = CountedStack(count=int(count.group(1)), frames=[])
            stacks.append(current)
            continue
        if current is None:
            continue
        frame = _DEBUG1_FRAME_RE.match(line)
        if frame:
            current.frames.append((frame.group(1), frame.group(2), int(frame.group(3))))
        elif not line.strip():
            current = None
    return Debug1(profile_type=head.group(1), total=int(head.group(2)), stacks=stacks)
