"""Which engine settings a reader of the query endpoint may set, and the limits a reader cannot lift.

The engine has close to two thousand settings, and several of them open files or the network: a schema path
for Protobuf/CapnProto output (`format_schema`, `output_format_schema` writes a file), a template read from
disk (`format_template_*`), a schema fetched by an inner query (`format_schema_source`), a schema registry
URL, row filters that are SQL... A deny-list cannot keep up with that, so readers get an ALLOW-LIST: what
clickhouse-connect, the ClickHouse JS client and Grafana's ClickHouse data source actually send (output
format options, time zones, block sizes, a few query-shaping switches) plus the resource limits, which a
reader may only LOWER. Everything else is refused with the engine's own error shape.

The same rule covers settings in the URL and in every `SETTINGS` clause of the statement (sqlguard reads
them off the engine's normalized text and checks it found as many clauses as the engine parsed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SETTING_CONSTRAINT_VIOLATION = 452
UNKNOWN_SETTING = 115
READONLY = 164

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
# A literal as the engine's formatter prints it in a SETTINGS clause: a number, a string, a bool.
_LITERAL_RE = re.compile(r"^(?:-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|'(?:[^'\\]|\\.)*'|true|false)$")

# Harmless settings readers' clients send. Nothing here names a file, a directory, a URL, a schema or SQL.
ALLOWED_SETTINGS = frozenset({
    # time zones and date-time text
    "session_timezone", "date_time_output_format", "date_time_input_format", "use_client_time_zone",
    # block sizes
    "max_block_size", "preferred_block_size_bytes", "min_insert_block_size_rows",
    # what clickhouse-connect and the JS client send with every query (wait_end_of_query is transport)
    "cast_string_to_dynamic_use_inference", "cancel_http_readonly_queries_on_client_close",
    "output_format_arrow_string_as_string",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "enable_http_compression",
    "http_zlib_compression_level", "default_format", "output_format_native_encode_types_in_binary_format",
    "output_format_binary_encode_types_in_binary_format", "output_format_native_write_json_as_string",
    "output_format_binary_write_json_as_string",
    # output format options (text shaping only)
    "output_format_json_quote_64bit_integers", "output_format_json_quote_64bit_floats",
    "output_format_json_quote_denormals", "output_format_json_quote_decimals",
    "output_format_json_named_tuples_as_objects", "output_format_json_array_of_rows",
    "output_format_json_validate_utf8", "output_format_json_escape_forward_slashes",
    "output_format_json_map_as_array_of_tuples", "output_format_json_pretty_print",
    "output_format_decimal_trailing_zeros", "output_format_write_statistics", "output_format_float_precision",
    "output_format_pretty_max_rows", "output_format_pretty_max_column_pad_width",
    "output_format_pretty_max_value_width", "output_format_pretty_color", "output_format_pretty_row_numbers",
    "output_format_pretty_grid_charset", "output_format_csv_crlf_end_of_line", "output_format_tsv_crlf_end_of_line",
    "format_csv_delimiter", "format_csv_allow_single_quotes", "format_csv_allow_double_quotes",
    "format_csv_null_representation", "format_tsv_null_representation",
    "output_format_arrow_low_cardinality_as_dictionary", "output_format_arrow_compression_method",
    "output_format_arrow_fixed_string_as_fixed_byte_array", "output_format_parquet_compression_method",
    "output_format_parquet_string_as_string", "output_format_parquet_row_group_size",
    "output_format_orc_string_as_string", "output_format_bson_string_as_string",
    "output_format_msgpack_uuid_representation", "output_format_values_escape_quote_with_quote",
    "output_format_sql_insert_table_name", "output_format_sql_insert_include_column_names",
    "output_format_sql_insert_quote_names", "output_format_trim_fixed_string",
    # query shaping that reads nothing new
    "extremes", "join_use_nulls", "prefer_column_name_to_alias", "enable_analyzer",
    "allow_experimental_analyzer", "aggregate_functions_null_for_empty", "transform_null_in", "final",
    "do_not_merge_across_partitions_select_final", "limit", "offset", "optimize_read_in_order",
    "allow_experimental_json_type", "enable_json_type", "allow_experimental_variant_type",
    "allow_experimental_dynamic_type", "allow_suspicious_low_cardinality_types",
    # limits a reader may set lower still (the endpoint's own caps are in ReaderLimits)
    "max_rows_to_read", "max_bytes_to_read", "read_overflow_mode", "result_overflow_mode",
    "timeout_overflow_mode",
})
# Settings that only ever make a query stop sooner, whatever the value: any value is fine.
_OVERFLOW_MODES = {"result_overflow_mode", "timeout_overflow_mode", "read_overflow_mode"}
_OVERFLOW_VALUES = {"throw", "break"}


@dataclass(frozen=True)
class ReaderLimits:
    """The endpoint's caps; readers may ask for less, never for more (0 = unlimited counts as more)."""

    max_memory_usage: int = 1 << 30
    max_execution_time: float = 60.0
    max_result_rows: int = 10_000_000
    max_result_bytes: int = 512 << 20
    max_threads: int = 4

    def caps(self) -> dict[str, float]:
        return {
            "max_memory_usage": self.max_memory_usage, "max_execution_time": self.max_execution_time,
            "max_result_rows": self.max_result_rows, "max_result_bytes": self.max_result_bytes,
            "max_threads": self.max_threads,
        }

    def fixed(self) -> dict[str, str]:
        """Settings every reader's session gets whatever it asked for (applied last)."""
        return {
            # the engine's default per-block sleep cap, pinned so readers cannot lift it
            "function_sleep_max_microseconds_per_block": "3000000",
            # no spilling to temporary files on behalf of a reader
            "max_bytes_before_external_group_by": "0", "max_bytes_before_external_sort": "0",
        }


class SettingRefused(Exception):
    """A setting a reader may not set; `code` and `name` are the engine's for the same refusal."""

    def __init__(self, code: int, message: str, name: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.name = name


def sql_literal(value: str) -> str:
    """A URL parameter's value as an SQL string literal (the engine converts it to the setting's type)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal_value(literal: str) -> str:
    """The text of a setting literal as `resolve` returns it (quotes and escapes removed)."""
    return _unquote(literal)


def _unquote(literal: str) -> str:
    if literal.startswith("'") and literal.endswith("'"):
        return re.sub(r"\\(.)", r"\1", literal[1:-1])
    return literal


def _clamp(name: str, literal: str, limits: ReaderLimits) -> str:
    """A URL limit above the cap (or 0, unlimited) becomes the cap: clients such as Grafana's data source send
    their own timeout as max_execution_time, and they should get the endpoint's limit, not an error."""
    caps = limits.caps()
    value = _unquote(literal).strip()
    if name in caps and _NUMBER_RE.match(value) and (float(value) == 0 or float(value) > caps[name]):
        cap = caps[name]
        return repr(cap) if isinstance(cap, float) else str(cap)
    return literal


def _check_value(name: str, literal: str, limits: ReaderLimits) -> None:
    caps = limits.caps()
    value = _unquote(literal).strip()
    if name in caps:
        if not _NUMBER_RE.match(value) or float(value) <= 0 or float(value) > caps[name]:
            cap = caps[name]
            shown = int(cap) if float(cap).is_integer() else cap
            raise SettingRefused(
                SETTING_CONSTRAINT_VIOLATION,
                f"Setting {name} should be greater than 0 and not greater than {shown}", "SETTING_CONSTRAINT_VIOLATION",
            )
    elif name in _OVERFLOW_MODES and value.lower() not in _OVERFLOW_VALUES:
        raise SettingRefused(SETTING_CONSTRAINT_VIOLATION, f"Setting {name} must be throw or break",
                             "SETTING_CONSTRAINT_VIOLATION")


def check_name(name: str, limits: ReaderLimits) -> None:
    """Raise `SettingRefused` unless readers may set `name` at all."""
    if not _NAME_RE.match(name):
        raise SettingRefused(UNKNOWN_SETTING, f"Unknown setting '{name}'", "UNKNOWN_SETTING")
    if name == "readonly":
        return
    if name not in ALLOWED_SETTINGS and name not in limits.caps():
        raise SettingRefused(
            SETTING_CONSTRAINT_VIOLATION,
            f"fleetwatch: setting {name} is not on the query endpoint's allow-list of reader settings",
            "SETTING_CONSTRAINT_VIOLATION",
        )


def resolve(
    url_settings: Mapping[str, str], clause_settings: Iterable[tuple[str, str]], limits: ReaderLimits
) -> dict[str, str]:
    """The session settings for one request, as `name -> SQL literal`, in the order they are applied.

    URL settings come first (a limit above its cap is lowered to the cap), the statement's own SETTINGS
    clauses after (the engine gives the clause the last word too; there a limit above its cap is refused,
    since the clause itself runs), then the endpoint's caps for every limit the reader did not lower, then
    the fixed settings.
    """
    out: dict[str, str] = {}
    for name, value in url_settings.items():
        check_name(name, limits)
        if name == "readonly":
            if value.strip() not in ("1", "2"):
                raise SettingRefused(READONLY, "Cannot modify 'readonly' setting in readonly mode", "READONLY")
            continue  # every reader session is read-only already
        literal = _clamp(name, sql_literal(value), limits)
        _check_value(name, literal, limits)
        out[name] = literal
    for name, literal in clause_settings:
        check_name(name, limits)
        if name == "readonly":
            continue  # left in the statement: the engine refuses any change of it
        if not _LITERAL_RE.match(literal):
            raise SettingRefused(SETTING_CONSTRAINT_VIOLATION,
                                 f"fleetwatch: setting {name} must be a plain literal", "SETTING_CONSTRAINT_VIOLATION")
        _check_value(name, literal, limits)
        out[name] = literal
    for name, cap in limits.caps().items():
        out.setdefault(name, repr(cap) if isinstance(cap, float) else str(cap))
    out.setdefault("result_overflow_mode", "'throw'")
    out.setdefault("timeout_overflow_mode", "'throw'")
    for name, value in limits.fixed().items():
        out[name] = value
    return out
