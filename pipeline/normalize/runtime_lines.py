"""Recognise and parse one line of Go runtime trace output (gctrace, scavenger, pacer, other runtime lines).

Pure string work. `classify(line)` answers what a line is and, for runtime lines, returns its fields as a
tuple in the order of the destination table's columns, so the caller can append it without building a
dict. Cheap substring tests decide which shape to try, then exactly one compiled regex per shape runs.

The runtime adds no prefix of its own, but log shippers often prepend a timestamp, so every shape is
searched for anywhere in the line (its head is specific enough), and the end of the line is anchored.
Shapes are written as named steps: the full regex is the steps joined, and when a line that looks like a
runtime line does not match, the same steps say which field failed and where (the quarantine reason).
The formats are described in docs/schema.md; numbers follow the Go runtime's printing rules (sizes are
truncated MiB/KiB, durations truncated milliseconds).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

# What `classify` says a line is.
APP = 0          # not a runtime line: application output
GC = 1           # gctrace summary line -> gc_events
SCAV = 2         # scavenger line -> scavenger_events
PACER = 3        # pacer line -> pacer_events
NOTICE = 4       # other runtime line -> runtime_notices (payload: kind)
BROKEN = 5       # has a runtime head but does not parse (payload: reason); a repair candidate
FRAGMENT = 6     # no head, but pieces of a runtime line: the tail of a broken line (payload: reason)
WEAK = 7         # application line that may start a broken runtime line ("gc app: ...")
UNSUPPORTED = 8  # a runtime line of a format Fleetwatch does not read (Go 1.4 and older; payload: reason)

_MS = r"(\d+(?:\.\d+)?)"
_F = r"([+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|[+-]?Inf)"
# Collectors add trailing blanks and carriage returns: the end of every shape tolerates them.
_END = r"[ \t\r\f\v]*$"

Steps = Sequence[tuple[str, str]]

# Go 1.6 - 1.27: 3 clock phases; stacks/globals since 1.18; the leak-check marker since 1.26.
GC_STEPS: Steps = (
    ("'gc <N>'", r"gc (\d+)"),
    ("' @<seconds>s'", r" @(\d+)\.(\d+)s"),
    ("' <percent>%'", r" (\d+)%"),
    ("':' (or ' (checking for goroutine leaks):')", r"( \(checking for goroutine leaks\))?: "),
    ("'<c1>+<c2>+<c3> ms clock, '", rf"{_MS}\+{_MS}\+{_MS} ms clock, "),
    ("'<p1>+<assist>/<background>/<idle>+<p3> ms cpu, '", rf"{_MS}\+{_MS}/{_MS}/{_MS}\+{_MS} ms cpu, "),
    ("'<H0>-><H1>-><H2> MB'", r"(\d+)->(\d+)->(\d+) MB"),
    ("', <G> MB goal'", r", (\d+) MB goal"),
    ("', <S> MB stacks, <GL> MB globals' (Go 1.18+)", r"(?:, (\d+) MB stacks, (\d+) MB globals)?"),
    ("', <P> P'", r", (\d+) P"),
    ("end of line or ' (forced)'", r"( \(forced\))?" + _END),
)
# Go 1.5 (and its development builds: 'gc #N', sometimes without the goal): 5 clock phases, 7 cpu numbers.
GC15_STEPS: Steps = (
    ("'gc <N>'", r"gc #?(\d+)"),
    ("' @<seconds>s'", r" @(\d+)\.(\d+)s"),
    ("' <percent>%'", r" (\d+)%"),
    ("':'", r": "),
    ("'<a>+<b>+<c>+<d>+<e> ms clock, '", rf"{_MS}\+{_MS}\+{_MS}\+{_MS}\+{_MS} ms clock, "),
    ("'<a>+<b>+<c>+<assist>/<background>/<idle>+<e> ms cpu, '",
     rf"{_MS}\+{_MS}\+{_MS}\+{_MS}/{_MS}/{_MS}\+{_MS} ms cpu, "),
    ("'<H0>-><H1>-><H2> MB'", r"(\d+)->(\d+)->(\d+) MB"),
    ("', <G> MB goal'", r"(?:, (\d+) MB goal)?"),
    ("', <P> P'", r", (\d+) P"),
    ("end of line or ' (forced)'", r"( \(forced\))?" + _END),
)
_SCAV_TAIL = (("'<U>% util'", r", (\d+)% util"),
              ("end of line, ' (forced)' or ' [controller reset]'", r"( \(forced\)| \[controller reset\])?" + _END))
SCAV121_STEPS: Steps = (
    ("'scav <BG> KiB work (bg)'", r"scav (\d+) KiB work \(bg\)"),
    ("', <EG> KiB work (eager)'", r", (\d+) KiB work \(eager\)"),
    ("', <NOW> KiB now'", r", (\d+) KiB now"),
    *_SCAV_TAIL,
)
SCAV114_STEPS: Steps = (
    ("'scav <W> KiB work'", r"scav (\d+) KiB work"),
    ("', <T> KiB total'", r", (\d+) KiB total"),
    *_SCAV_TAIL,
)
SCAV115_STEPS: Steps = (
    ("'scav <GEN> <W> KiB work'", r"scav (\d+) (\d+) KiB work"),
    ("', <T> KiB total'", r", (\d+) KiB total"),
    *_SCAV_TAIL,
)
SCVG_STEPS: Steps = (
    ("'[forced ]scvg[<K>]: '", r"(forced )?scvg(-?\d+)?: "),
    # Go 1.13's background scavenger prints KB ("scvg: 12 KB released"); everything else prints MB.
    ("'<R> MB released', '<R> KB released' or 'inuse: ..., consumed: ... (MB)'",
     r"(?:(\d+) (MB|KB) released|inuse: (\d+), idle: (\d+), sys: (\d+), released: (\d+), consumed: (\d+) \(MB\))"),
    ("end of line", _END),
)
PACER_ASSIST_STEPS: Steps = (
    ("'pacer: assist ratio=<F>'", rf"pacer: assist ratio={_F}"),
    ("' (scan <SC> MB in <L0>-><GOAL> MB)'", r" \(scan (\d+) MB in (\d+)->(\d+) MB\)"),
    ("' workers=<D>+<F>'", rf" workers=(\d+)\+{_F}"),
    ("end of line", _END),
)
PACER_END_STEPS: Steps = (
    ("'pacer: <U>% CPU (<G> exp.)'", r"pacer: (\d+)% CPU \((\d+) exp\.\)"),
    ("' for <H>+<S>+<G> B work (<E> B exp.)'", r" for (\d+)\+(\d+)\+(\d+) B work \((\d+) B exp\.\)"),
    ("' in <TRIG> B -> <LIVE> B'", r" in (\d+) B -> (\d+) B"),
    ("' (∆goal <DG>, cons/mark <F>)'", rf" \(∆goal (-?\d+), cons/mark {_F}\)"),
    ("end of line or '[controller reset]'", r"(\[controller reset\])?" + _END),
)
_OLD_PACER_KEYS = ("H_m_prev", "h_t", "H_T", "h_a", "H_a", "h_g", "H_g", "u_a", "u_g", "W_a", "goalΔ",
                   "actualΔ", "u_a/u_g")
PACER_OLD_STEPS: Steps = (
    ("'pacer: H_m_prev=<int>'", r"pacer: H_m_prev=(-?\d+)"),
    *((f"' {k}=<number>'", rf" {re.escape(k)}={_F}") for k in _OLD_PACER_KEYS[1:]),
    ("end of line", _END),
)
PACER_SWEEP_STEPS: Steps = (
    ("'pacer: sweep done at heap size <N>MB'", r"pacer: sweep done at heap size (\d+)MB"),
    ("'; allocated <N>MB during sweep'", r"; allocated (\d+)MB during sweep"),
    ("'; swept <N> pages at <F> pages/byte'", rf"; swept (\d+) pages at {_F} pages/byte"),
    ("end of line", _END),
)
SCAN_STEPS: Steps = (
    ("'scan: total' or 'scan: class <size>'", r"scan: (?:total|class (?:L|\d+B))"),
    ("' <N>[+<N>+<N>=<N>] objs'", r" \d+(?:\+\d+\+\d+=\d+)? objs"),
    ("', <N>+<N>=<N> spans' or end of line", r"(?:, \d+\+\d+=\d+ spans)?" + _END),
)


def _compile(steps: Steps) -> re.Pattern[str]:
    return re.compile("".join(p for _, p in steps))


_GC = _compile(GC_STEPS)
_GC15 = _compile(GC15_STEPS)
_SCAV121 = _compile(SCAV121_STEPS)
_SCAV114 = _compile(SCAV114_STEPS)
_SCAV115 = _compile(SCAV115_STEPS)
_SCVG = _compile(SCVG_STEPS)
_PACER_ASSIST = _compile(PACER_ASSIST_STEPS)
_PACER_END = _compile(PACER_END_STEPS)
_PACER_OLD = _compile(PACER_OLD_STEPS)
_PACER_SWEEP = _compile(PACER_SWEEP_STEPS)
_SCAN = _compile(SCAN_STEPS)

_GC_FORCED = re.compile(r"(?:^|\s)GC forced" + _END)
_GC_HEAD = re.compile(r"gc #?\d+ @")
# Go 1.4 and older: "gc76(1): 0+0+0+0 us, 0 -> 0 MB, ..." (microseconds, an unrelated layout).
_GC14 = re.compile(r"(?:^|\s)gc\d+\(\d+\): \d+\+\d+\+\d+\+\d+ us")
UNSUPPORTED_GO14 = "unsupported Go version: Go 1.4 or older gctrace format ('gcN(P): ... us'), Go 1.5+ is read"
# The last field of a gc line on a line of its own (", 8 P", "8 P (forced)"): the line was cut just before
# it. Only believed right after a broken gc line (see `pipeline.normalize.gctrace`).
# A gc line's last field, as a continuation may hold it: `N P` (torn before or inside the number) or just ` P`
# (torn right after the number: Go's own output `..., 2gcchurn: forced cycle 0` then ` P (forced)`).
P_TAIL = re.compile(r"(?:(?:^|[\s,])\d+ |^[ \t]*)P(?: \(forced\))?[ \t\r\f\v]*$")
# Where each typed shape begins, for the shipper's prefix in front of it (kept in the row's line_prefix).
_HEADS = re.compile(r"gc #?\d+ @|(?:forced )?scvg|scav \d|pacer: ")
_SCAV_HEAD = re.compile(r"scav \d")
_SCHED = re.compile(r"SCHED \d+ms: ")
_INIT = re.compile(r"init \S+ @\d+(?:\.\d+)? ms, \d+(?:\.\d+)? ms clock, \d+ bytes, \d+ allocs" + _END)
# Pieces that only a runtime line contains: a line without a head but with one of these is the tail of a
# runtime line that application output split (see `pipeline.normalize.gctrace`).
_FRAGMENT_TOKENS = (
    " ms clock, ", " ms cpu, ", " MB goal", " MB stacks", " MB globals", " KiB work", " KiB total",
    " KiB now", "% util", " pages/byte", " B work (", " B exp.)", "cons/mark", " MB) workers=",
    "during sweep; swept ", " objs, ", " MB released", ", consumed: ", " (MB)", "goalΔ=", "u_a/u_g=",
)
# Where a broken runtime line can begin: the first word of every shape.
REPAIR_HEADS = ("gc", "scav", "scvg", "pacer", "scan:", "forced scvg")

# The map of a pacer line without key=value fields (one shared, never changed).
_NO_FIELDS: dict[str, float] = {}

# The layouts of the parsed lines, declared once: every reader addresses a field by its name (attribute or
# `FIELD_INDEX`), so a field added for a new Go version cannot silently shift the others. The caller adds
# identity, time and provenance around them; the names are the destination columns' names except where
# `pipeline.normalize.gctrace` converts (since_us -> since_start_s) or uses a field only for time (clock_us).


class GcFields(NamedTuple):
    """One gctrace summary line."""

    gc_num: int
    since_us: int                 # @T, exact microseconds
    gc_cpu_pct: int
    stw_sweep_term_ms: float
    mark_ms: float
    stw_mark_term_ms: float
    cpu_sweep_term_ms: float
    cpu_assist_ms: float
    cpu_background_ms: float
    cpu_idle_ms: float
    cpu_mark_term_ms: float
    heap_start_mb: int
    heap_end_mb: int
    heap_live_mb: int
    heap_goal_mb: int | None
    stacks_mb: int | None
    globals_mb: int | None
    procs: int
    forced: int
    leak_check: int
    format: str
    clock_us: int                 # wall-clock duration of the cycle (sum of the clock phases)


class ScavFields(NamedTuple):
    """One scavenger line; the fields a wording does not print stay None."""

    kind: str
    format: str
    work_bg_kib: int | None = None
    work_eager_kib: int | None = None
    released_kib: int | None = None
    util_pct: int | None = None
    generation: int | None = None
    released_delta_mb: int | None = None
    inuse_mb: int | None = None
    idle_mb: int | None = None
    sys_mb: int | None = None
    consumed_mb: int | None = None
    forced: int = 0
    controller_reset: int = 0
    released_delta_kib: int | None = None   # "scvg: N KB|MB released", exact


class PacerFields(NamedTuple):
    """One gcpacertrace line; the fields its kind does not print stay None."""

    kind: str
    assist_ratio: float | None = None
    scan_mb: int | None = None
    heap_live_start_mb: int | None = None
    heap_goal_mb: int | None = None
    workers_dedicated: int | None = None
    workers_fractional: float | None = None
    cpu_util_pct: float | None = None
    cpu_util_goal_pct: float | None = None
    heap_scan_work_b: int | None = None
    stack_scan_work_b: int | None = None
    globals_scan_work_b: int | None = None
    expected_work_b: int | None = None
    heap_trigger_b: int | None = None
    heap_live_b: int | None = None
    goal_delta_b: int | None = None
    cons_mark: float | None = None
    sweep_heap_mb: int | None = None
    sweep_allocated_mb: int | None = None
    swept_pages: int | None = None
    pages_per_byte: float | None = None
    controller_reset: int = 0
    fields: dict[str, float] = _NO_FIELDS                # every key=value of an end_old line


GC_FIELDS: tuple[str, ...] = GcFields._fields
SCAV_FIELDS: tuple[str, ...] = ScavFields._fields
PACER_FIELDS: tuple[str, ...] = PacerFields._fields
# Position of each gc field in a GcFields tuple, for the loops that read many rows at once.
GC_INDEX: dict[str, int] = {name: i for i, name in enumerate(GC_FIELDS)}
# Builds a GcFields from a tuple in field order without the keyword binding of its generated __new__.
_new_gc = tuple.__new__


def _frac_us(frac: str) -> int:
    """Microseconds from the digits after the decimal point of '@<s>.<frac>s' (exact, no float)."""
    if len(frac) == 3:
        return int(frac) * 1000
    return int((frac + "000000")[:6])


def parse_gc(line: str) -> GcFields | None:
    """A gctrace summary line (any Go version 1.5+) -> GcFields, or None."""
    m = _GC.search(line)
    if m is not None:
        (n, sec, frac, pct, leak, c1, c2, c3, p1, pa, pb, pi, p3, h0, h1, h2, goal, stacks, globals_, procs,
         forced) = m.groups()
        c1f, c2f, c3f = float(c1), float(c2), float(c3)
        if stacks is None:
            fmt = "go1.6"
        else:
            fmt = "go1.26" if leak else "go1.18"
            stacks = int(stacks)
            globals_ = int(globals_)
        # Positional, in GcFields order (keywords cost several microseconds per line for 22 fields; the
        # order is pinned field by field by tests/unit/test_gctrace_lines.py::test_parse_gc_fields_by_name).
        return _new_gc(GcFields, (
            int(n), int(sec) * 1_000_000 + _frac_us(frac), int(pct),  # gc_num, since_us, gc_cpu_pct
            c1f, c2f, c3f,  # stw_sweep_term_ms, mark_ms, stw_mark_term_ms
            float(p1), float(pa), float(pb), float(pi), float(p3),  # cpu_*_ms: sweep_term assist bg idle mark_term
            int(h0), int(h1), int(h2), int(goal),  # heap_*_mb: start, end, live, goal
            stacks, globals_, int(procs),  # stacks_mb, globals_mb, procs
            1 if forced else 0, 1 if leak else 0, fmt,  # forced, leak_check, format
            round((c1f + c2f + c3f) * 1000),  # clock_us
        ))
    m = _GC15.search(line)
    if m is None:
        return None
    (n, sec, frac, pct, a, b, c, d, e, pa_, pb_, pc_, assist, background, idle, pe, h0, h1, h2, goal, procs,
     forced) = m.groups()
    # Five phases: STW sweep termination, scan, install write barrier, mark, STW mark termination. The
    # three concurrent ones are the mark phase of later versions; their CPU counts as background work.
    af, ef = float(a), float(e)
    mark = float(b) + float(c) + float(d)
    return GcFields(
        gc_num=int(n), since_us=int(sec) * 1_000_000 + _frac_us(frac), gc_cpu_pct=int(pct),
        stw_sweep_term_ms=af, mark_ms=mark, stw_mark_term_ms=ef, cpu_sweep_term_ms=float(pa_),
        cpu_assist_ms=float(assist), cpu_background_ms=float(background) + float(pb_) + float(pc_),
        cpu_idle_ms=float(idle), cpu_mark_term_ms=float(pe), heap_start_mb=int(h0), heap_end_mb=int(h1),
        heap_live_mb=int(h2), heap_goal_mb=None if goal is None else int(goal), stacks_mb=None,
        globals_mb=None, procs=int(procs), forced=1 if forced else 0, leak_check=0, format="go1.5",
        clock_us=round((af + mark + ef) * 1000),
    )


def parse_scav(line: str) -> ScavFields | None:
    """A scavenger line (scav in every wording since 1.14, scvg before) -> ScavFields, or None."""
    if "scav " in line:
        if "(bg)" in line:
            m = _SCAV121.search(line)
            if m is None:
                return None
            bg, eager, now, util, tail = m.groups()
            return ScavFields(kind="scav", format="go1.21", work_bg_kib=int(bg), work_eager_kib=int(eager),
                              released_kib=int(now), util_pct=int(util), forced=1 if tail == " (forced)" else 0,
                              controller_reset=1 if tail == " [controller reset]" else 0)
        m = _SCAV114.search(line)
        gen = None
        fmt = "go1.14"
        if m is None:
            m = _SCAV115.search(line)
            if m is None:
                return None
            fmt = "go1.15"
            gen_s, work, total, util, tail = m.groups()
            gen = int(gen_s)
        else:
            work, total, util, tail = m.groups()
        return ScavFields(kind="scav", format=fmt, work_bg_kib=int(work), released_kib=int(total),
                          util_pct=int(util), generation=gen, forced=1 if tail == " (forced)" else 0,
                          controller_reset=1 if tail == " [controller reset]" else 0)
    m = _SCVG.search(line)
    if m is None:
        return None
    forced_word, round_, released, unit, inuse, idle, sys_, released_level, consumed = m.groups()
    gen = None if round_ is None else int(round_)
    fmt = "go1.13" if round_ is None else "go1.5"
    forced = 1 if forced_word or gen == -1 else 0
    if released is not None:
        # released_delta_kib is exact for both units; released_delta_mb keeps the MiB the runtime would
        # print (KB >> 10, truncated as the runtime truncates).
        kib = int(released) if unit == "KB" else int(released) << 10
        return ScavFields(kind="scvg_released", format=fmt, generation=gen, released_delta_mb=kib >> 10,
                          forced=forced, released_delta_kib=kib)
    return ScavFields(kind="scvg_stats", format=fmt, released_kib=int(released_level) << 10, generation=gen,
                      inuse_mb=int(inuse), idle_mb=int(idle), sys_mb=int(sys_), consumed_mb=int(consumed),
                      forced=forced)


def parse_pacer(line: str) -> PacerFields | None:
    """A gcpacertrace line (cycle start, cycle end in both wordings, sweep done) -> PacerFields, or None."""
    if "assist ratio=" in line:
        m = _PACER_ASSIST.search(line)
        if m is None:
            return None
        ratio, scan, live, goal, dedicated, fractional = m.groups()
        return PacerFields(kind="assist", assist_ratio=float(ratio), scan_mb=int(scan),
                           heap_live_start_mb=int(live), heap_goal_mb=int(goal), workers_dedicated=int(dedicated),
                           workers_fractional=float(fractional))
    if "% CPU (" in line:
        m = _PACER_END.search(line)
        if m is None:
            return None
        util, goal_util, hw, sw, gw, exp, trig, live, dgoal, cm, reset = m.groups()
        return PacerFields(kind="end", cpu_util_pct=float(util), cpu_util_goal_pct=float(goal_util),
                           heap_scan_work_b=int(hw), stack_scan_work_b=int(sw), globals_scan_work_b=int(gw),
                           expected_work_b=int(exp), heap_trigger_b=int(trig), heap_live_b=int(live),
                           goal_delta_b=int(dgoal), cons_mark=float(cm), controller_reset=1 if reset else 0)
    if "sweep done" in line:
        m = _PACER_SWEEP.search(line)
        if m is None:
            return None
        heap, alloc, pages, per_byte = m.groups()
        return PacerFields(kind="sweep_done", sweep_heap_mb=int(heap), sweep_allocated_mb=int(alloc),
                           swept_pages=int(pages), pages_per_byte=float(per_byte))
    m = _PACER_OLD.search(line)
    if m is None:
        return None
    values = [float(v) for v in m.groups()]
    fields = dict(zip(_OLD_PACER_KEYS, values, strict=True))
    return PacerFields(kind="end_old", cpu_util_pct=fields["u_a"] * 100, cpu_util_goal_pct=fields["u_g"] * 100,
                       heap_scan_work_b=int(fields["W_a"]), heap_trigger_b=int(fields["H_T"]),
                       heap_live_b=int(fields["H_a"]), goal_delta_b=int(fields["H_a"] - fields["H_g"]),
                       fields=fields)


def _generic_head(line: str, head: str) -> bool:
    """`head` starts the line, or follows a log shipper's prefix (text ending in a space, with a digit)."""
    pos = line.find(head)
    if pos <= 0:
        return pos == 0
    return line[pos - 1] == " " and any(ch.isdigit() for ch in line[:pos])


def classify(line: str) -> tuple[int, object]:
    """What `line` is, and its parsed fields: (GC|SCAV|PACER, tuple), (NOTICE, kind), (BROKEN|FRAGMENT,
    reason), (WEAK, None) or (APP, None)."""
    if " ms clock, " in line:
        parsed = parse_gc(line)
        if parsed is not None:
            return GC, parsed
        if "init " in line and _INIT.search(line):
            return NOTICE, "init"
        if "gc " in line:
            return BROKEN, diagnose_gc(line)
        return FRAGMENT, "tail of a gc line without its beginning"
    if "pacer: " in line:
        parsed = parse_pacer(line)
        if parsed is not None:
            return PACER, parsed
        return BROKEN, diagnose(line, "pacer: ", _PACER_SHAPES, "pacer line")
    if "scav " in line or "scvg" in line:
        parsed = parse_scav(line)
        if parsed is not None:
            return SCAV, parsed
        if "scvg" in line:
            return BROKEN, diagnose(line, "scvg", (("go1.5-1.13 scvg", SCVG_STEPS),), "scavenger line")
        if _SCAV_HEAD.search(line):
            return BROKEN, diagnose(line, "scav ", _SCAV_SHAPES, "scavenger line")
    if "scan: " in line and ("scan: total" in line or "scan: class" in line):
        if _SCAN.search(line):
            return NOTICE, "scan"
        return BROKEN, diagnose(line, "scan: ", (("gctrace=2 scan", SCAN_STEPS),), "gctrace=2 scan line")
    if "GC forced" in line and _GC_FORCED.search(line):
        return NOTICE, "gc_forced"
    if "gc " in line:
        # At column 0 "gc " is the runtime's own first token ("gc " + foreign text is a split gc line).
        if line.startswith("gc ") or _GC_HEAD.search(line):
            return BROKEN, diagnose_gc(line)
        return WEAK, None
    if "SCHED " in line and _SCHED.search(line):
        return NOTICE, "sched"
    if "checkfinalizers: " in line and _generic_head(line, "checkfinalizers: "):
        return NOTICE, "checkfinalizers"
    if "runtime: " in line and _generic_head(line, "runtime: "):
        return NOTICE, "runtime_warning"
    for token in _FRAGMENT_TOKENS:
        if token in line:
            return FRAGMENT, f"tail of a runtime line ({token.strip()!r}) without its beginning"
    if "): " in line and "gc" in line and _GC14.search(line):
        return UNSUPPORTED, UNSUPPORTED_GO14
    if "sca" in line or "pac" in line:
        return WEAK, None
    return APP, None


def line_prefix(line: str) -> str:
    """The text a log shipper put in front of a typed runtime line ("" when the line starts with its head)."""
    if line.startswith(("gc ", "scav ", "scvg", "pacer: ", "forced scvg")):
        return ""
    m = _HEADS.search(line)
    return "" if m is None else line[:m.start()].rstrip()


_PACER_SHAPES = (
    ("cycle start", PACER_ASSIST_STEPS), ("cycle end (go1.18+)", PACER_END_STEPS),
    ("cycle end (<=go1.17)", PACER_OLD_STEPS), ("sweep done", PACER_SWEEP_STEPS),
)
_SCAV_SHAPES = (
    ("go1.21+", SCAV121_STEPS), ("go1.14/1.19-1.20", SCAV114_STEPS), ("go1.15-1.18", SCAV115_STEPS),
)
# For diagnosis the optional stacks/globals part is spelled out, so the reason names the field that failed.
_GC118_DIAG = tuple(
    step for s in GC_STEPS for step in (
        (("', <S> MB stacks'", r", (\d+) MB stacks"), ("', <GL> MB globals'", r", (\d+) MB globals"))
        if "stacks" in s[0] else (s,)
    )
)
_GC16_DIAG = tuple(s for s in GC_STEPS if "stacks" not in s[0])
_GC_SHAPES = (("go1.18+", _GC118_DIAG), ("go1.6-1.17", _GC16_DIAG), ("go1.5", GC15_STEPS))
_STEP_CACHE: dict[str, re.Pattern[str]] = {}


def _step(pattern: str) -> re.Pattern[str]:
    compiled = _STEP_CACHE.get(pattern)
    if compiled is None:
        compiled = _STEP_CACHE[pattern] = re.compile(pattern)
    return compiled


def diagnose_gc(line: str) -> str:
    return diagnose(line, "gc ", _GC_SHAPES, "gc line")


def diagnose(line: str, head: str, shapes: Sequence[tuple[str, Steps]], what: str) -> str:
    """Why `line` is not a valid `what`: the step of the closest shape that failed, with its column.

    Only called for lines that already failed to parse, so it may be slow.
    """
    best: tuple[int, str, str] | None = None
    starts = [m.start() for m in re.finditer(re.escape(head.rstrip()), line)] or [0]
    for name, steps in shapes:
        for start in starts:
            pos = start
            failed = ""
            for label, pattern in steps:
                m = _step(pattern).match(line, pos)
                if m is None:
                    failed = label
                    break
                pos = m.end()
            if best is None or pos > best[0]:
                best = (pos, name, failed)
    assert best is not None
    pos, name, failed = best
    snippet = line[pos:pos + 40]
    return f"{what} ({name}): expected {failed} at column {pos + 1}, found {snippet!r}"
