"""Counting an OTLP request's records before it is decoded, so a flood is refused cheaply.

A 6 MB protobuf body can hold 3 million empty log records; decoding it builds 3 million message objects and
the rows after them take gigabytes. The count here walks only the length-delimited fields on the path to
the records (resource -> scope -> record; for metrics down to the data points) and stops as soon as the
limit is passed, so refusing a flood costs at most `limit` steps; a body shorter than two bytes per allowed
record cannot hold too many and is not walked at all (the common case costs nothing). Malformed wire data
ends the count; the decoder then reports the error.

For OTLP/JSON the parser counts objects as it builds them (`json_objects_hook`) and stops past its limit,
and nesting deeper than the parser allows is a 400, not a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pipeline.store.row_binary import read_uvarint

# Field numbers of the repeated message fields from a request down to its records.
_PATHS: dict[str, tuple[tuple[int, ...], ...]] = {
    "logs": ((1,), (2,), (2,)),  # resource_logs -> scope_logs -> log_records
    "traces": ((1,), (2,), (2,)),  # resource_spans -> scope_spans -> spans
    # resource_metrics -> scope_metrics -> metrics -> gauge|sum|histogram|exponential_histogram|summary
    # -> data_points
    "metrics": ((1,), (2,), (2,), (5, 7, 9, 10, 11), (1,)),
}


# The smallest encoding of one record on the wire: its tag and a zero length.
_MIN_RECORD_BYTES = 2


class TooManyRecords(Exception):
    pass


class TooManyObjects(Exception):
    pass


def _children(buf: memoryview, start: int, end: int, fields: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """(start, end) of every length-delimited field in `fields` of the message at buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = read_uvarint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = read_uvarint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = read_uvarint(buf, pos, end)
            if pos + length > end:
                raise ValueError("field past the end")
            if number in fields:
                yield pos, pos + length
            pos += length
        else:
            raise ValueError("unsupported wire type")


def check_record_count(signal: str, body: bytes, limit: int) -> None:
    """Raise TooManyRecords when the protobuf request holds more than `limit` records."""
    path = _PATHS.get(signal)
    if path is None or len(body) < _MIN_RECORD_BYTES * limit:
        return  # too short to hold more than `limit` records: nothing to count
    buf = memoryview(body)
    count = 0

    def walk(start: int, end: int, depth: int) -> None:
        nonlocal count
        for child_start, child_end in _children(buf, start, end, path[depth]):
            if depth == len(path) - 1:
                count += 1
                if count > limit:
                    raise TooManyRecords(f"more than {limit} records in one request")
            else:
                walk(child_start, child_end, depth + 1)

    try:
        walk(0, len(buf), 0)
    except ValueError:
        return  # malformed: the decoder says why


def json_objects_hook(limit: int) -> Any:
    """An `object_pairs_hook` for json.loads that refuses past `limit` objects while parsing."""
    seen = 0

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal seen
        seen += 1
        if seen > limit:
            raise TooManyObjects(f"more than {limit} JSON objects in one request")
        return dict(pairs)

    return hook


def load_json(body: bytes, max_objects: int) -> Any:
    """Parse OTLP/JSON with an object budget; too deep nesting raises ValueError (-> 400)."""
    try:
        return json.loads(body, object_pairs_hook=json_objects_hook(max_objects))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def count_decoded(signal: str, request: Any) -> int:
    """Records of a decoded request (checked for JSON, whose size on the wire says little)."""
    total = 0
    if signal == "logs":
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                total += len(sl.log_records)
    elif signal == "traces":
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                total += len(ss.spans)
    else:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    total += len(getattr(metric, kind).data_points) if kind else 0
    return total
