"""Kafka messages -> rows: what each topic's payload means. Pure: no broker, no store, no clock.

The Kafka source hands over a batch of messages from one partition; this module turns each message into
rows through the same normalizers every other transport uses (gctrace lines, cancel-events, OTLP). The
result depends only on the messages and the `received_at` passed in, so a batch replayed after a crash
produces the same rows in the same order, which is what lets its dedup token drop the replay
(docs/kafka.md, "Delivery").

A message that cannot be understood at all (not UTF-8, not JSON, not an OTLP request, too large, or one
that makes a normalizer fail) becomes one quarantine row carrying its topic, partition and offset; the
messages after it are processed as usual.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from pipeline.normalize.cancel import normalize_cancel_payload
from pipeline.normalize.lines import split_lines
from pipeline.normalize.pprof import PROFILE_TYPES, PprofLimits, ProfileMeta, normalize_profile
from pipeline.normalize.rows import Rows

log = logging.getLogger(__name__)

SOURCE = "kafka"
UNKNOWN_SERVICE = "unknown"


class Kind(StrEnum):
    """What a topic carries; the settings map topic names to kinds."""

    gctrace = "gctrace"
    cancel_events = "cancel_event"
    otlp_logs = "otlp_logs"
    otlp_spans = "otlp_spans"
    otlp_metrics = "otlp_metrics"
    pprof = "pprof"


# The OTLP normalizer's name for each OTLP kind.
OTLP_SIGNALS = {Kind.otlp_logs: "logs", Kind.otlp_spans: "traces", Kind.otlp_metrics: "metrics"}

# `content-type` header values (as the Collector and common producers set them) -> OTLP encoding.
_CONTENT_TYPES = {
    "application/x-protobuf": "proto",
    "application/protobuf": "proto",
    "application/vnd.google.protobuf": "proto",
    "application/json": "json",
}


class KafkaMessage(NamedTuple):
    """The parts of a consumer record that decoding needs, detached from the Kafka client. A named tuple (immutable,
    fields by name) rather than a frozen dataclass: one is built per record, and a tuple is built about 3x faster."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")

    def header(self, name: str) -> str | None:
        """The last header called `name` (case-insensitive), as text; None when absent or not UTF-8."""
        wanted = name.lower()
        for key, raw in reversed(self.headers):
            if key.lower() == wanted and raw is not None:
                try:
                    return raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    return None
        return None

    @property
    def where(self) -> dict[str, Any]:
        """Quarantine context: where the message can be found again."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


def normalize_messages(
    kind: Kind,
    messages: Iterable[KafkaMessage],
    *,
    rows: Rows,
    received_at: datetime,
    otlp_encoding: str = "otlp_proto",
    max_message_bytes: int = 16 * 1024 * 1024,
    pprof_limits: PprofLimits | None = None,
) -> int:
    """Append the rows of every message to `rows`; returns how many messages were quarantined whole.

    Each message is normalized into rows of its own first and merged only when it succeeded, so a
    normalizer that fails halfway never leaves half a message behind.
    """
    if kind is Kind.gctrace:
        return _gctrace_messages(messages, rows, received_at, max_message_bytes)
    if kind is Kind.pprof:
        limits = pprof_limits or PprofLimits()
        return sum(_pprof(msg, rows, received_at, limits, max_message_bytes) for msg in messages)
    poisoned = 0
    for msg in messages:
        poisoned += normalize_message(kind, msg, rows, received_at, otlp_encoding, max_bytes=max_message_bytes)
    return poisoned


def normalize_message(kind: Kind, msg: KafkaMessage, rows: Rows, received_at: datetime, otlp_encoding: str = "",
                      *, max_bytes: int) -> int:
    """Append the rows of one message (or its quarantine row) to `rows`; 1 when it was quarantined whole."""
    own = Rows()
    try:
        reason = _normalize_one(kind, msg, own, received_at, otlp_encoding, max_bytes)
    except Exception as exc:  # a bug or an input nobody anticipated must not stop the partition
        log.warning("message %s/%d@%d failed: %r", msg.topic, msg.partition, msg.offset, exc)
        reason = f"cannot process message: {type(exc).__name__}: {exc}"
        own = Rows()
    if reason is not None:
        own = Rows()
        service, instance = identity_from_transport(msg)
        own.quarantine(source=SOURCE, signal=kind.value, reason=reason, raw=msg.value or b"",
                       service=service, instance=instance, received_at=received_at, **msg.where)
        rows.extend(own)
        return 1
    rows.extend(own)
    return 0


@dataclass(slots=True)
class GctraceRun:
    """Consecutive raw-text gctrace messages of one (service, instance): the lines of one normalizer call."""

    identity: tuple[str, str]
    messages: list[KafkaMessage]
    lines: list[list[str]]  # per message, without line terminators


def gctrace_runs(messages: Iterable[KafkaMessage], max_bytes: int) -> Iterator[GctraceRun | KafkaMessage]:
    """A gctrace batch in order: runs of raw-text messages of one identity, and the messages that take the
    per-message path (JSON envelopes, tombstones, too large, not UTF-8), each in its place in the sequence.

    The runs' boundaries depend only on the messages, which a batch plan fixes, so a replay cuts the same runs.
    """
    run: GctraceRun | None = None
    # The identity depends only on key and headers, which repeat from message to message.
    identities: dict[tuple[bytes | None, tuple], tuple[str, str]] = {}
    for msg in messages:
        lines = _raw_text_lines(msg, max_bytes)
        if lines is None:
            if run is not None:
                yield run
                run = None
            yield msg
            continue
        transport = (msg.key, msg.headers)
        identity = identities.get(transport)
        if identity is None:
            identity = identities[transport] = identity_from_transport(msg)
        if run is not None and run.identity != identity:
            yield run
            run = None
        if run is None:
            run = GctraceRun(identity, [], [])
        run.messages.append(msg)
        run.lines.append(lines)
    if run is not None:
        yield run


def _gctrace_messages(messages: Iterable[KafkaMessage], rows: Rows, received_at: datetime, max_bytes: int) -> int:
    """gctrace topics: consecutive raw-text messages of one (service, instance) are normalized together.

    With one line per message (what most shippers send), the per-call work of a normalizer (Rows, flush,
    merge) costs more than the line itself, and a runtime line torn by application output arrives in two
    messages: one call over the group's lines gives every transport the same repair window (each line keeps
    its message's time, and a quarantine row its message's offset). The group is a run of messages of one
    batch, whose boundaries the batch plan fixes, so a replay rebuilds the same rows. JSON envelopes and
    messages rejected whole take the per-message path, in their place in the sequence.
    """
    poisoned = 0
    for item in gctrace_runs(messages, max_bytes):
        if isinstance(item, KafkaMessage):
            poisoned += normalize_message(Kind.gctrace, item, rows, received_at, max_bytes=max_bytes)
        else:
            poisoned += _flush_group(item, rows, received_at, max_bytes)
    return poisoned


def _raw_text_lines(msg: KafkaMessage, max_bytes: int) -> list[str] | None:
    """The lines of a raw-text gctrace message; None for anything else (JSON, tombstone, too large,
    not UTF-8), which the per-message path handles."""
    value = msg.value
    if value is None or len(value) > max_bytes:
        return None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.lstrip().startswith(("{", "[")):
        return None
    # Blank lines stay: the normalizer counts them (and stores nothing), and they take their place in the
    # repair window exactly as in a file.
    return split_lines(text)


def _flush_group(run: GctraceRun, rows: Rows, received_at: datetime, max_bytes: int) -> int:
    from pipeline.normalize.gctrace import normalize_lines

    own = Rows()
    lines, observed, where_at = run_lines(run)
    try:
        normalize_lines(lines, observed_ns=observed, service=run.identity[0], instance=run.identity[1], source=SOURCE,
                        received_at=received_at, rows=own, where_at=where_at)
    except Exception:  # redo message by message, so only the message that fails is quarantined
        return redo_run(run, rows, received_at, max_bytes)
    rows.extend(own)
    return 0


def run_lines(run: GctraceRun) -> tuple[list[str], list[int], Callable[[int], dict[str, Any]]]:
    """A run's lines, each line's observed time (unix ns: its message's timestamp) and where each line's
    message is (for quarantine rows)."""
    lines: list[str] = []
    observed: list[int] = []
    owners: list[KafkaMessage] = []
    for msg, msg_lines in zip(run.messages, run.lines, strict=True):
        lines.extend(msg_lines)
        observed.extend([msg.timestamp_ms * 1_000_000] * len(msg_lines))
        owners.extend([msg] * len(msg_lines))
    return lines, observed, lambda i: owners[i].where


def redo_run(run: GctraceRun, rows: Rows, received_at: datetime, max_bytes: int) -> int:
    """A run whose normalizer call failed, message by message: only the message that fails is quarantined."""
    return sum(normalize_message(Kind.gctrace, msg, rows, received_at, max_bytes=max_bytes) for msg in run.messages)


def _normalize_one(
    kind: Kind, msg: KafkaMessage, rows: Rows, received_at: datetime, otlp_encoding: str, max_bytes: int
) -> str | None:
    """Normalize one message into `rows`; returns a quarantine reason when the whole message is rejected."""
    value = msg.value
    if value is None:
        return "empty message (tombstone)"
    if len(value) > max_bytes:
        return f"message of {len(value)} bytes exceeds max_message_bytes ({max_bytes})"
    if kind is Kind.gctrace:
        return _gctrace(msg, value, rows, received_at)
    if kind is Kind.cancel_events:
        service, instance = identity_from_transport(msg)
        normalize_cancel_payload(value, rows=rows, source=SOURCE, received_at=received_at,
                                 service=service if service != UNKNOWN_SERVICE else "", instance=instance,
                                 quarantine=msg.where)
        return None
    return _otlp(kind, msg, value, rows, received_at, otlp_encoding)


# -- pprof: one profile per message ----------------------------------------------------------------------
def _pprof(msg: KafkaMessage, rows: Rows, received_at: datetime, limits: PprofLimits, max_bytes: int) -> int:
    """One profile (binary value); 1 when it was quarantined. The time is the profile's own, else the record's
    timestamp, so a replayed message gives the same snapshot id and rows."""
    service, instance = identity_from_transport(msg)
    hint = (msg.header("profile-type") or "").lower() or None
    if hint is not None and hint not in PROFILE_TYPES:
        hint = None
    meta = ProfileMeta(service=service, instance=instance, source=SOURCE, observed_ns=msg.timestamp_ms * 1_000_000,
                       received_at=received_at, type_hint=hint, location=f"{msg.topic}/{msg.partition}@{msg.offset}",
                       **msg.where)
    value = msg.value or b""
    if msg.value is None:
        rows.quarantine(source=SOURCE, signal=Kind.pprof.value, reason="empty message (tombstone)", raw=b"",
                        service=service, instance=instance, received_at=received_at, **msg.where)
        return 1
    own = Rows()
    try:
        result = normalize_profile(value, meta, own, replace(limits, max_input_bytes=min(limits.max_input_bytes,
                                                                                          max_bytes)))
    except Exception as exc:  # a bug or an input nobody anticipated must not stop the partition
        log.warning("message %s/%d@%d failed: %r", msg.topic, msg.partition, msg.offset, exc)
        own = Rows()
        own.quarantine(source=SOURCE, signal=Kind.pprof.value, reason=f"cannot process profile: {exc!r}"[:2000],
                       raw=value, service=service, instance=instance, received_at=received_at, **msg.where)
        rows.extend(own)
        return 1
    rows.extend(own)
    return 0 if result.ok else 1


# -- OTLP ------------------------------------------------------------------------------------------------
def otlp_encoding_of(msg: KafkaMessage, default: str) -> str:
    """`proto` or `json`: the message's `content-type` header when it names one, else the topic default."""
    content_type = (msg.header("content-type") or "").split(";")[0].strip().lower()
    if content_type in _CONTENT_TYPES:
        return _CONTENT_TYPES[content_type]
    return "json" if default.lower() in ("otlp_json", "json") else "proto"


def _otlp(kind: Kind, msg: KafkaMessage, value: bytes, rows: Rows, received_at: datetime,
          default_encoding: str) -> str | None:
    from pipeline.normalize import otlp

    signal = OTLP_SIGNALS[kind]
    encoding = otlp_encoding_of(msg, default_encoding)
    try:
        request = otlp.decode_request(signal, value, encoding)  # type: ignore[arg-type]
    except otlp.OtlpDecodeError as exc:
        return f"cannot decode otlp_{encoding}: {exc}"
    otlp.normalize_request(signal, request, rows=rows, source=SOURCE, received_at=received_at,  # type: ignore[arg-type]
                           quarantine=msg.where)
    return None


# -- gctrace: raw text or JSON envelopes ----------------------------------------------------------------
def identity_from_transport(msg: KafkaMessage) -> tuple[str, str]:
    """(service, instance) from the `service`/`instance` headers, else a `service/instance` key."""
    service = msg.header("service") or ""
    instance = msg.header("instance") or ""
    if (not service or not instance) and msg.key:
        try:
            key = msg.key.decode("utf-8").strip()
        except UnicodeDecodeError:
            key = ""
        key_service, _, key_instance = key.partition("/")
        service = service or key_service
        instance = instance or key_instance
    return service or UNKNOWN_SERVICE, instance


def _gctrace(msg: KafkaMessage, value: bytes, rows: Rows, received_at: datetime) -> str | None:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: {exc}"
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            return f"invalid JSON envelope: {exc}"
        envelopes = doc if isinstance(doc, list) else [doc]
        parsed = []
        for env in envelopes:
            if not isinstance(env, dict):
                return "a JSON envelope must be an object (or an array of objects)"
            try:
                parsed.append(parse_envelope(env, msg))
            except ValueError as exc:
                return f"invalid JSON envelope: {exc}"
        for envelope in parsed:
            _lines(envelope.lines, envelope.observed_ns, envelope.service, envelope.instance, msg, rows,
                   received_at)
        return None
    service, instance = identity_from_transport(msg)
    _lines(split_lines(text), msg.timestamp_ms * 1_000_000, service, instance, msg, rows, received_at)
    return None


def _lines(lines: Sequence[str], observed_ns: int, service: str, instance: str, msg: KafkaMessage,
           rows: Rows, received_at: datetime) -> None:
    from pipeline.normalize.gctrace import normalize_lines

    normalize_lines(list(lines), observed_ns=observed_ns, service=service,
                    instance=instance, source=SOURCE, received_at=received_at, rows=rows, quarantine=msg.where)


@dataclass(frozen=True)
class Envelope:
    service: str
    instance: str
    observed_ns: int
    lines: list[str]


_LINE_FIELDS = ("line", "lines", "message", "log", "msg")
_TIME_FIELDS = ("ts", "@timestamp", "timestamp", "time")
_SERVICE_FIELDS = ("service", "service.name", "service_name")
_INSTANCE_FIELDS = ("instance", "service.instance.id", "service_instance_id")
_HOST_FIELDS = ("host", "hostname", "host.name")
_K8S_SERVICE_LABELS = ("app.kubernetes.io/name", "app", "k8s-app")


def parse_envelope(env: Mapping[str, Any], msg: KafkaMessage) -> Envelope:
    """Read the identity, time and lines of one JSON envelope, in the spellings common agents use.

    Fleetwatch's own shape is `{"service","instance","ts","line"|"lines","attributes"}`; Docker's json-file
    (`log`, `time`), Fluent Bit and Vector (`message`, `log`, `@timestamp`, `host`, `kubernetes.*` nested
    or flattened with dots) are read too. Missing identity falls back to headers and key; missing time to
    the record timestamp.
    """
    lines = _envelope_lines(env)
    k8s = _kubernetes(env)
    labels = k8s.get("labels") or k8s.get("pod_labels") or {}
    t_service, t_instance = identity_from_transport(msg)
    service = (
        _first_text(env, _SERVICE_FIELDS)
        or next((str(labels[k]) for k in _K8S_SERVICE_LABELS if isinstance(labels, dict) and labels.get(k)), "")
        or str(k8s.get("container_name") or "")
        or t_service
    )
    instance = (
        _first_text(env, _INSTANCE_FIELDS)
        or str(k8s.get("pod_name") or "")
        or _host(env)
        or t_instance
    )
    observed_ns = msg.timestamp_ms * 1_000_000
    for name in _TIME_FIELDS:
        if env.get(name) is not None:
            observed_ns = envelope_time_ns(env[name])
            break
    return Envelope(service=service, instance=instance, observed_ns=observed_ns, lines=lines)


def _envelope_lines(env: Mapping[str, Any]) -> list[str]:
    for name in _LINE_FIELDS:
        value = env.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            return split_lines(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [part for v in value for part in split_lines(v)]
        raise ValueError(f"field {name!r} must be a string or a list of strings")
    raise ValueError(f"no line found (expected one of {', '.join(_LINE_FIELDS)})")


def _first_text(env: Mapping[str, Any], names: Sequence[str]) -> str:
    for name in names:
        value = env.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _host(env: Mapping[str, Any]) -> str:
    host = _first_text(env, _HOST_FIELDS)
    if host:
        return host
    nested = env.get("host")
    if isinstance(nested, dict):  # Elastic Common Schema: {"host": {"name": ...}}
        return str(nested.get("name") or nested.get("hostname") or "")
    return ""


def _kubernetes(env: Mapping[str, Any]) -> dict[str, Any]:
    """The `kubernetes` object, nested (Fluent Bit) or flattened as `kubernetes.pod_name` (Vector, jq)."""
    nested = env.get("kubernetes")
    k8s: dict[str, Any] = dict(nested) if isinstance(nested, dict) else {}
    for key, value in env.items():
        if key.startswith("kubernetes."):
            k8s.setdefault(key[len("kubernetes."):], value)
    return k8s


def envelope_time_ns(value: Any) -> int:
    """Unix nanoseconds from RFC 3339 text, or from a number in seconds, ms, µs or ns (by magnitude).

    Agents disagree on units: Fluent Bit writes float seconds, JavaScript-based shippers milliseconds,
    Fleetwatch's own envelope nanoseconds. Magnitudes of these never overlap for dates after 2001.
    """
    from pipeline.models import parse_timestamp_ns

    if isinstance(value, bool):
        raise ValueError("time cannot be a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float | int = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return parse_timestamp_ns(text)
        value = number
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("time is not a finite number")
        if abs(value) < 10**11:  # float seconds keep their fraction
            return parse_timestamp_ns(round(value * 1e9))
        value = int(value)
    if isinstance(value, int):
        return parse_timestamp_ns(_scale(value))
    raise ValueError(f"unsupported time {value!r}")


def _scale(value: int) -> int:
    magnitude = abs(value)
    if magnitude < 10**11:  # seconds
        return value * 10**9
    if magnitude < 10**14:  # milliseconds
        return value * 10**6
    if magnitude < 10**17:  # microseconds
        return value * 10**3
    return value
