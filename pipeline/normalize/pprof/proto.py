"""The pprof `Profile` protobuf message, defined in Python from google/pprof's `proto/profile.proto`.

Only the fields Fleetwatch reads are declared (unknown fields are skipped by the runtime), built with
`descriptor_pb2` and `message_factory` so no protoc or generated module is needed: the installed protobuf
runtime (upb) does the decoding in C.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "fleetwatch.pprof"

# message -> [(name, number, type, repeated, message type name)], as in profile.proto.
_MESSAGES: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "Profile": [
        ("sample_type", 1, _F.TYPE_MESSAGE, True, "ValueType"),
        ("sample", 2, _F.TYPE_MESSAGE, True, "Sample"),
        ("location", 4, _F.TYPE_MESSAGE, True, "Location"),
        ("function", 5, _F.TYPE_MESSAGE, True, "Function"),
        ("string_table", 6, _F.TYPE_STRING, True, ""),
        ("time_nanos", 9, _F.TYPE_INT64, False, ""),
        ("duration_nanos", 10, _F.TYPE_INT64, False, ""),
        ("period_type", 11, _F.TYPE_MESSAGE, False, "ValueType"),
        ("period", 12, _F.TYPE_INT64, False, ""),
        ("comment", 13, _F.TYPE_INT64, True, ""),
        ("default_sample_type", 14, _F.TYPE_INT64, False, ""),
    ],
    "ValueType": [
        ("type", 1, _F.TYPE_INT64, False, ""),
        ("unit", 2, _F.TYPE_INT64, False, ""),
    ],
    "Sample": [
        ("location_id", 1, _F.TYPE_UINT64, True, ""),
        ("value", 2, _F.TYPE_INT64, True, ""),
    ],
    "Location": [
        ("id", 1, _F.TYPE_UINT64, False, ""),
        ("mapping_id", 2, _F.TYPE_UINT64, False, ""),
        ("address", 3, _F.TYPE_UINT64, False, ""),
        ("line", 4, _F.TYPE_MESSAGE, True, "Line"),
    ],
    "Line": [
        ("function_id", 1, _F.TYPE_UINT64, False, ""),
        ("line", 2, _F.TYPE_INT64, False, ""),
    ],
    "Function": [
        ("id", 1, _F.TYPE_UINT64, False, ""),
        ("name", 2, _F.TYPE_INT64, False, ""),
        ("system_name", 3, _F.TYPE_INT64, False, ""),
        ("filename", 4, _F.TYPE_INT64, False, ""),
        ("start_line", 5, _F.TYPE_INT64, False, ""),
    ],
}


def _build() -> type[Message]:
    fdp = descriptor_pb2.FileDescriptorProto(name="fleetwatch_pprof_profile.proto", package=_PACKAGE,
                                             syntax="proto3")
    for name, fields in _MESSAGES.items():
        msg = fdp.message_type.add(name=name)
        for field_name, number, ftype, repeated, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=ftype,
                                  label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Profile"))


Profile: type[Message] = _build()

