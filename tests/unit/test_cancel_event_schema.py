"""The published cancel-event JSON Schema: generated from the model, in sync with schemas/, and honest.

Honest means: an event the schema accepts is one the pydantic validator accepts too (producers validate
against the schema before sending), including the spellings the validator is lenient about.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from pipeline.models import CancelEvent, schema_documents

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
VALID = {
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "cancel_at": "2026-11-29T10:00:00.123456789Z",
    "cause": "timeout",
    "stack_depth": 7,
    "service": "api",
    "instance": "api-1",
}


def test_published_schemas_match_the_models() -> None:
    """Regenerate with `python -m pipeline.models` after changing a wire model."""
    for name, text in schema_documents().items():
        published = (SCHEMAS / name).read_text(encoding="utf-8")
        assert published == text, f"schemas/{name} is stale: run python -m pipeline.models"


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_documents()["cancel_event.schema.json"])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"cause": "canceled"},
        {"cause": "cancelled"},
        {"cause": "parent_canceled"},
        {"cause": "context deadline exceeded"},
        {"cancel_at": 1_796_000_000_123_456_789},
        {"cancel_at": "1796000000123456789"},
        {"cancel_at": "2026-11-29T10:00:00+02:00"},
        {"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"},
        {"extra_field": 1},
    ],
)
def test_what_the_schema_accepts_the_model_accepts(change: dict) -> None:
    event = {**VALID, **change}
    _validator().validate(event)
    CancelEvent.model_validate(event)


@pytest.mark.parametrize(
    "change",
    [
        {"cause": "aborted"},
        {"trace_id": "4bf92f35"},
        {"span_id": "zz"},
        {"stack_depth": -1},
        {"cancel_at": 1.5},
        {"cancel_at": 5},
        {"cancel_at": "yesterday"},
    ],
)
def test_both_reject_invalid_events(change: dict) -> None:
    event = {**VALID, **change}
    assert list(_validator().iter_errors(event)), f"schema accepted {change}"
    with pytest.raises(ValidationError):
        CancelEvent.model_validate(event)
