"""Stacks: one canonical form for every format, a stable id, and the frame that explains each stack.

The same goroutine looks different in each format: protobuf profiles keep the runtime's own frames
(`runtime.gopark`, `runtime.chanrecv1`), `debug=1` drops the leading `runtime.` frames and `debug=2`
hides unexported runtime frames. So every stack is first cut the same way: `runtime.goexit` and the
leading runtime frames go (unless nothing else is left). Then the same code has the same `stack_id` in
every door and format, and the id is a hash of (function, file, line), leaf first, with blake2b (stable
across processes and versions, unlike Python's hash()).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

Frame = tuple[str, str, int]  # (function, file, line)

_RUNTIME_PREFIXES = ("runtime.", "internal/runtime/")
# Frames that only carry a goroutine to where it waits: the blocking site is the first frame past them.
WAIT_PLUMBING_PREFIXES = ("runtime.", "internal/", "sync.", "sync/atomic.", "time.Sleep", "context.(*cancelCtx).Done")
# Frames that only carry an allocation to the runtime: the allocating site is the first frame past them.
ALLOC_PLUMBING_PREFIXES = (
    "runtime.", "internal/", "reflect.", "sync.", "bytes.", "strings.", "strconv.", "fmt.", "slices.",
    "maps.", "errors.", "sort.", "unicode/", "encoding/binary.",
)


def canonical(frames: Sequence[Frame]) -> list[Frame]:
    """The stack without runtime.goexit and without its leading runtime frames (kept if nothing else)."""
    kept = [f for f in frames if f[0] != "runtime.goexit"]
    start = 0
    while start < len(kept) and kept[start][0].startswith(_RUNTIME_PREFIXES):
        start += 1
    return kept[start:] if start < len(kept) else kept


def stack_id(frames: Sequence[Frame]) -> int:
    """UInt64 hash of the frames' (function, file, line), leaf first."""
    h = hashlib.blake2b(digest_size=8)
    for function, file, line in frames:
        h.update(f"{function}\x1f{file}\x1f{line}\x1e".encode("utf-8", errors="surrogatepass"))
    return int.from_bytes(h.digest(), "little")


def site(frames: Sequence[Frame], plumbing: tuple[str, ...]) -> Frame:
    """The first frame, leaf first, whose function is not plumbing; the leaf when every frame is."""
    for frame in frames:
        if not frame[0].startswith(plumbing):
            return frame
    return frames[0] if frames else ("", "", 0)
