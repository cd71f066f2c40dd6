"""One profile's bytes -> rows: snapshot, deduplicated stacks, samples, the raw bytes, or a quarantine row.

Pure: the caller hands in the bytes, who sent them and when they were observed. Every door (file
ingest, the `pprof` Kafka topic, the scraper) calls `normalize_profile`, so a profile gives the same rows
whichever way it came in. The format is sniffed from the content (gzip, protobuf, debug=1, debug=2,
traceback); the profile type too where the content says it, else the caller's hint decides.

Hostile input is bounded before it is decoded: the received size, the decompressed size (inflated in
one bounded step, never beyond the limit) and the number of samples or goroutines all have limits.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import DecodeError

from pipeline.normalize.pprof import stacks as st
from pipeline.normalize.pprof import text as tx
from pipeline.normalize.pprof.proto import Profile
from pipeline.normalize.rows import Rows

SIGNAL = "pprof"
GOROUTINE_TYPES = ("goroutine", "goroutineleak")
HEAP_TYPES = ("allocs", "heap")
PROFILE_TYPES = GOROUTINE_TYPES + HEAP_TYPES
_HEAP_SAMPLE_TYPES = ("alloc_objects", "alloc_space", "inuse_objects", "inuse_space")
_GZIP_MAGIC = b"\x1f\x8b"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_NS, _MAX_NS = 0, 4_102_444_800 * 10**9   # 1970 .. 2100


@dataclass(frozen=True)
class PprofLimits:
    """Bounds on one profile; the settings' `[pprof]` section fills them."""

    max_input_bytes: int = 64 * 1024 * 1024
    max_decoded_bytes: int = 256 * 1024 * 1024
    max_samples: int = 1_000_000


@dataclass(frozen=True)
class ProfileMeta:
    """Who sent a profile, how, and when it was observed (unix ns)."""

    service: str
    instance: str
    source: str                       # scrape, file, kafka
    observed_ns: int                  # used when neither `ts_ns` nor the profile gives a time
    received_at: datetime
    ts_ns: int | None = None          # an explicit time (ingest --time): wins over the profile's own
    type_hint: str | None = None      # goroutine, goroutineleak, allocs, heap: what was asked for
    location: str = ""                # file name, URL or topic/partition/offset, for quarantine
    topic: str = ""
    partition: int = -1
    offset: int = -1


@dataclass
class ProfileResult:
    """What became of one profile."""

    snapshot_id: str = ""
    profile_type: str = ""
    format: str = ""
    error: str = ""                   # the quarantine reason; '' when stored
    goroutines: int = 0
    stacks: int = 0
    samples: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


class ProfileError(ValueError):
    """The profile cannot be stored; the message is the quarantine reason."""


@dataclass
class _Parsed:
    profile_type: str
    format: str
    ts_ns: int | None = None
    duration_ns: int = 0
    period: int = 0
    total_goroutines: int = 0
    stacks: dict[int, list[st.Frame]] = field(default_factory=dict)
    # goroutine kinds: (stack_id, wait_reason, wait_minutes, created_by, leaked) -> goroutines
    goroutines: dict[tuple[int, str, int, st.Frame, int], int] = field(default_factory=dict)
    # heap kinds: stack_id -> [alloc_objects, alloc_space, inuse_objects, inuse_space]
    heap: dict[int, list[int]] = field(default_factory=dict)


def normalize_profile(data: bytes, meta: ProfileMeta, rows: Rows, limits: PprofLimits | None = None) -> ProfileResult:
    """Append the rows of one profile to `rows` (or one quarantine row with the reason)."""
    limits = limits or PprofLimits()
    try:
        parsed = parse_profile(data, meta.type_hint, limits)
    except ProfileError as exc:
        _quarantine(rows, meta, data, str(exc))
        return ProfileResult(error=str(exc), profile_type=meta.type_hint or "")
    ts_ns = meta.ts_ns if meta.ts_ns is not None else (parsed.ts_ns or meta.observed_ns)
    if not _MIN_NS <= ts_ns <= _MAX_NS:
        # A profile's own clock far outside what the store can hold: the observed time stands in.
        ts_ns = meta.observed_ns
    ts = _datetime(ts_ns)
    snapshot = snapshot_id(meta.service, meta.instance, parsed.profile_type, ts_ns, data)
    for sid, frames in parsed.stacks.items():
        rows.append("profile_stacks", {
            "stack_id": sid,
            "functions": [f[0] for f in frames],
            "files": [f[1] for f in frames],
            "lines": [f[2] for f in frames],
            "first_seen": ts,
            "last_seen": ts,
        })
    ident = {"service": meta.service, "instance": meta.instance, "ts": ts, "snapshot_id": snapshot,
             "profile_type": parsed.profile_type}
    samples = 0
    for (sid, reason, minutes, created, leaked), count in parsed.goroutines.items():
        fn, file, line = st.site(parsed.stacks[sid], st.WAIT_PLUMBING_PREFIXES)
        rows.append("goroutine_samples", {
            **ident, "stack_id": sid, "goroutines": count, "wait_reason": reason, "wait_minutes": minutes,
            "site_function": fn, "site_file": file, "site_line": line,
            "created_by_function": created[0], "created_by_file": created[1], "created_by_line": created[2],
            "leaked": leaked,
        })
        samples += 1
    for sid, values in parsed.heap.items():
        fn, file, line = st.site(parsed.stacks[sid], st.ALLOC_PLUMBING_PREFIXES)
        rows.append("heap_samples", {
            **ident, "stack_id": sid, "alloc_objects": values[0], "alloc_space": values[1],
            "inuse_objects": values[2], "inuse_space": values[3],
            "site_function": fn, "site_file": file, "site_line": line,
        })
        samples += 1
    rows.append("profile_snapshots", {
        **ident, "source": meta.source, "format": parsed.format, "total_goroutines": parsed.total_goroutines,
        "sample_period": parsed.period, "duration_ns": parsed.duration_ns, "process_start": _EPOCH,
        "go_version": "", "stacks": len(parsed.stacks), "bytes": len(data), "received_at": meta.received_at,
    })
    rows.append("profile_raw", {**ident, "format": parsed.format, "data": data})
    return ProfileResult(snapshot_id=snapshot, profile_type=parsed.profile_type, format=parsed.format,
                         goroutines=parsed.total_goroutines, stacks=len(parsed.stacks), samples=samples)


def snapshot_id(service: str, instance: str, profile_type: str, ts_ns: int, data: bytes) -> str:
    """Deterministic: the same profile from the same process at the same time has the same id."""
    h = hashlib.sha256(f"{service}\x00{instance}\x00{profile_type}\x00{ts_ns}\x00".encode())
    h.update(hashlib.sha256(data).digest())
    return h.hexdigest()[:32]


def parse_profile(data: bytes, type_hint: str | None, limits: PprofLimits) -> _Parsed:
    """Sniff and parse; raises ProfileError with the quarantine reason."""
    if type_hint is not None and type_hint not in PROFILE_TYPES:
        raise ProfileError(f"unknown profile type {type_hint!r} (one of {', '.join(PROFILE_TYPES)})")
    if not data:
        raise ProfileError("empty profile")
    if len(data) > limits.max_input_bytes:
        raise ProfileError(f"profile of {len(data)} bytes exceeds pprof.max_input_bytes ({limits.max_input_bytes})")
    body = gunzip(data, limits.max_decoded_bytes) if data[:2] == _GZIP_MAGIC else data
    if len(body) > limits.max_decoded_bytes:
        raise ProfileError(f"profile of {len(body)} bytes exceeds pprof.max_decoded_bytes ({limits.max_decoded_bytes})")
    head = body[:512].lstrip()
    if head[:1] == b"<" or b"<html" in head.lower():
        raise ProfileError("HTML, not a profile (a login page, proxy error or the pprof index?)")
    text = _as_text(body)
    if text is not None:
        if tx.looks_like_debug1(text):
            return _from_debug1(text, type_hint, limits)
        if tx.starts_with_goroutine_block(text):
            return _from_goroutines(text, "debug2", type_hint, limits)
        if tx.has_goroutine_blocks(text):
            return _from_goroutines(text, "traceback", type_hint, limits)
        if body[:1] != b"\x0a":
            raise ProfileError("text that is neither a goroutine dump (debug=1, debug=2, traceback) nor a profile")
    return _from_proto(body, type_hint, limits)


def gunzip(data: bytes, max_decoded: int) -> bytes:
    """Inflate at most `max_decoded` + 1 bytes, so a gzip bomb costs no more memory than the limit."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, max_decoded + 1)
    except zlib.error as exc:
        raise ProfileError(f"not a valid gzip stream: {exc}") from None
    if len(out) > max_decoded:
        raise ProfileError(f"decompressed profile exceeds pprof.max_decoded_bytes ({max_decoded})")
    if not inflater.eof:
        raise ProfileError("truncated gzip stream (the profile was cut off)")
    return out


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _family_check(content_type: str, type_hint: str | None) -> None:
    if type_hint is None:
        return
    if (content_type in GOROUTINE_TYPES) != (type_hint in GOROUTINE_TYPES):
        raise ProfileError(f"expected a {type_hint} profile, the content is a {content_type} profile")


def _add_stack(parsed: _Parsed, frames: Sequence[st.Frame]) -> int:
    canon = st.canonical(frames)
    sid = st.stack_id(canon)
    parsed.stacks.setdefault(sid, canon)
    return sid


def _from_debug1(text: str, type_hint: str | None, limits: PprofLimits) -> _Parsed:
    try:
        dump = tx.parse_debug1(text, limits.max_samples)
    except tx.TextError as exc:
        raise ProfileError(str(exc)) from None
    if dump.profile_type not in GOROUTINE_TYPES:
        raise ProfileError(f"unsupported debug=1 profile {dump.profile_type!r} (goroutine and goroutineleak are read)")
    _family_check(dump.profile_type, type_hint)
    parsed = _Parsed(profile_type=dump.profile_type, format="debug1", total_goroutines=dump.total)
    leaked = int(dump.profile_type == "goroutineleak")
    for stack in dump.stacks:
        sid = _add_stack(parsed, stack.frames)
        key = (sid, "", 0, ("", "", 0), leaked)
        parsed.goroutines[key] = parsed.goroutines.get(key, 0) + stack.count
    return parsed


def _from_goroutines(text: str, fmt: str, type_hint: str | None, limits: PprofLimits) -> _Parsed:
    try:
        goroutines = tx.parse_goroutines(text, limits.max_samples)
    except tx.TextError as exc:
        raise ProfileError(str(exc)) from None
    if not goroutines:
        raise ProfileError("goroutine dump without goroutine blocks")
    profile_type = type_hint or "goroutine"
    _family_check("goroutine", type_hint)
    parsed = _Parsed(profile_type=profile_type, format=fmt, total_goroutines=len(goroutines))
    for g in goroutines:
        sid = _add_stack(parsed, g.frames)
        key = (sid, g.state, g.wait_minutes, g.created_by, int(g.leaked))
        parsed.goroutines[key] = parsed.goroutines.get(key, 0) + 1
    return parsed


def _from_proto(body: bytes, type_hint: str | None, limits: PprofLimits) -> _Parsed:
    prof = Profile()
    try:
        prof.ParseFromString(body)
    except DecodeError as exc:
        detail = str(exc) or "truncated or wrong message"
        raise ProfileError(f"not a pprof profile: protobuf decode failed ({detail})") from None
    strings: Sequence[str] = prof.string_table
    if not strings or strings[0] != "":
        raise ProfileError("not a pprof profile: no string table (string_table[0] must be '')")
    if not prof.sample_type:
        raise ProfileError("not a pprof profile: no sample types")
    if len(prof.sample) > limits.max_samples:
        raise ProfileError(f"{len(prof.sample)} samples exceed pprof.max_samples ({limits.max_samples})")
    try:
        types = [strings[vt.type] for vt in prof.sample_type]
        default_type = strings[prof.default_sample_type] if prof.default_sample_type else ""
        functions = {fn.id: (strings[fn.name], strings[fn.filename]) for fn in prof.function}
    except IndexError:
        raise ProfileError("corrupt pprof profile: a string index is out of range") from None
    if len(types) == 1 and types[0] in GOROUTINE_TYPES:
        profile_type = types[0]
    elif all(t in types for t in _HEAP_SAMPLE_TYPES):
        # allocs and heap hold the same samples; Go marks allocs by its default view, alloc_space.
        by_content = "allocs" if default_type == "alloc_space" else "heap"
        profile_type = type_hint if type_hint in HEAP_TYPES else by_content
    else:
        raise ProfileError(f"unsupported profile (sample types {', '.join(types)}): goroutine, goroutineleak, "
                           "allocs and heap are read")
    _family_check(profile_type, type_hint)
    parsed = _Parsed(profile_type=profile_type, format="pprof", ts_ns=prof.time_nanos or None,
                     duration_ns=prof.duration_nanos)
    locations: dict[int, list[st.Frame]] = {}
    for loc in prof.location:
        frames = []
        for ln in loc.line:
            fn = functions.get(ln.function_id)
            if fn is None:
                raise ProfileError(
                    f"corrupt pprof profile: location {loc.id} refers to missing function {ln.function_id}")
            frames.append((fn[0], fn[1], max(0, min(ln.line, 0xFFFFFFFF))))
        locations[loc.id] = frames
    if profile_type in GOROUTINE_TYPES:
        _proto_goroutines(prof, parsed, locations)
    else:
        parsed.period = prof.period
        index = [types.index(t) for t in _HEAP_SAMPLE_TYPES]
        _proto_heap(prof, parsed, locations, index, len(types))
    return parsed


def _frames(location_ids: Sequence[int], locations: Mapping[int, list[st.Frame]]) -> list[st.Frame]:
    frames: list[st.Frame] = []
    for lid in location_ids:
        loc = locations.get(lid)
        if loc is None:
            raise ProfileError(f"corrupt pprof profile: a sample refers to missing location {lid}")
        frames.extend(loc)
    return frames


def _proto_goroutines(prof: Profile, parsed: _Parsed, locations: Mapping[int, list[st.Frame]]) -> None:
    leaked = int(parsed.profile_type == "goroutineleak")
    total = 0
    for sample in prof.sample:
        if len(sample.value) != 1:
            raise ProfileError("corrupt pprof profile: a sample's values do not match its sample types")
        count = max(0, sample.value[0])
        sid = _add_stack(parsed, _frames(sample.location_id, locations))
        key = (sid, "", 0, ("", "", 0), leaked)
        parsed.goroutines[key] = parsed.goroutines.get(key, 0) + count
        total += count
    parsed.total_goroutines = total


def _proto_heap(prof: Profile, parsed: _Parsed, locations: Mapping[int, list[st.Frame]], index: list[int],
                width: int) -> None:
    for sample in prof.sample:
        if len(sample.value) != width:
            raise ProfileError("corrupt pprof profile: a sample's values do not match its sample types")
        sid = _add_stack(parsed, _frames(sample.location_id, locations))
        acc = parsed.heap.setdefault(sid, [0, 0, 0, 0])
        for k, i in enumerate(index):
            acc[k] += sample.value[i]


def _datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _quarantine(rows: Rows, meta: ProfileMeta, data: bytes, reason: str) -> None:
    rows.quarantine(source=meta.source, signal=SIGNAL, reason=reason, raw=data, service=meta.service,
                    instance=meta.instance, location=meta.location, topic=meta.topic, partition=meta.partition,
                    offset=meta.offset, received_at=meta.received_at)
