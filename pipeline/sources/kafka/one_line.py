"""Kafka gctrace batches of one line per message, staged for the engine without Python per message.

Why: with one line per message (what most log shippers send), everything the engine path does per message in
Python (`gctrace_runs`: decode, split, look for a JSON envelope, look up the identity, a run per identity change;
then the stage's columns message by message) cost more than the engine's parse of the line (about 5-7 µs per
message against 2). Most such batches are plain: every value one non-empty UTF-8 line without a line break, no
JSON. That is checked for the whole batch at once with C-speed operations on the joined values (one `join`, one
`count`, one `decode`, a regular-expression search only when a brace is present), and the stage's columns come
out of list operations and `map` (the line column is the values themselves: the client writes bytes as they
are); the identity is worked out once per distinct (key, headers), and a run is cut wherever the identity
changes (`compress` over the pairwise comparison).

The rows are exactly the general path's: the lines, their times, identities and runs are the ones
`gctrace_runs` would give for such a batch (a test compares the two on every capture), and a batch that is not
plain in any respect (a tombstone, an empty or multi-line value, a carriage return, a value that is too large or
not UTF-8, a JSON envelope) returns None here and takes the general path whole. Only the runs that hold a line
the engine does not recognise are built as `GctraceRun`s, for the Python normalizer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter, ne

from pipeline.normalize.kafka_messages import GctraceRun, KafkaMessage, identity_from_transport

# A line that the general path would read as a JSON envelope: its first non-blank character is { or [. With
# MULTILINE, `\s*` may run over an all-blank line into the next one, but then that next line matches by itself.
_JSON_LINE = re.compile(r"^\s*[{\[]", re.MULTILINE)
_values = attrgetter("value")
_keys = attrgetter("key")
_headers = attrgetter("headers")
_times = attrgetter("timestamp_ms")


@dataclass
class OneLineBatch:
    """A plain one-line-per-message batch as the engine stage's columns, line i being message i."""

    messages: Sequence[KafkaMessage]
    values: list[bytes]  # the lines as the stage takes them: the values themselves, valid UTF-8 without a break
    observed_us: list[int]
    ident: list[int]  # index into `identities`, per line
    identities: list[tuple[str, str]]
    run_starts: list[int]  # first line of every run (consecutive lines of one identity)

    def run(self, index: int) -> GctraceRun:
        """Run `index` as the general path builds it (for the Python normalizer)."""
        first = self.run_starts[index]
        end = self.run_starts[index + 1] if index + 1 < len(self.run_starts) else len(self.values)
        return GctraceRun(self.identities[self.ident[first]], list(self.messages[first:end]),
                          [[value.decode("utf-8")] for value in self.values[first:end]])


def one_line_batch(messages: Sequence[KafkaMessage], max_bytes: int) -> OneLineBatch | None:
    """The batch's stage columns when every message is one plain raw-text line; None otherwise."""
    if not messages:
        return None
    values = list(map(_values, messages))
    if None in values or b"" in values or max(map(len, values)) > max_bytes:
        return None
    joined = b"\n".join(values)
    if joined.count(b"\n") != len(values) - 1 or b"\r" in joined:
        return None
    try:
        text = joined.decode("utf-8")
    except UnicodeDecodeError:  # "\n" cannot complete a sequence: the join decodes exactly when every value does
        return None
    if (b"{" in joined or b"[" in joined) and _JSON_LINE.search(text) is not None:  # the find is C-speed, the regex not
        return None
    headers = list(map(_headers, messages))
    transports: list[object] = list(zip(map(_keys, messages), headers, strict=True)) if any(headers) \
        else list(map(_keys, messages))
    identities: dict[tuple[str, str], int] = {}
    index_of: dict[object, int] = {}
    for transport in dict.fromkeys(transports):  # distinct, in order of first appearance
        key, hdrs = transport if isinstance(transport, tuple) else (transport, ())
        who = KafkaMessage(topic="", partition=0, offset=0, timestamp_ms=0, key=key, value=None, headers=hdrs)
        index_of[transport] = identities.setdefault(identity_from_transport(who), len(identities))
    ident = list(map(index_of.__getitem__, transports))
    run_starts = [0, *compress(range(1, len(ident)), map(ne, ident[1:], ident[:-1]))]
    observed_us = [ms * 1000 for ms in map(_times, messages)]
    return OneLineBatch(messages, values, observed_us, ident, list(identities), run_starts)
