"""docs/configuration.md is generated from the settings model; this keeps it from going stale."""

from pipeline.config import Settings
from pipeline.config_reference import DOC_PATH, render_reference


def test_configuration_doc_is_current() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_reference(), (
        "docs/configuration.md is stale: run `python -m pipeline.config_reference`"
    )


def test_every_setting_is_documented_with_a_meaning() -> None:
    text = render_reference()
    for name in Settings.model_fields:
        assert f"`FLEETWATCH_{name.upper()}`" in text or f"`FLEETWATCH_{name.upper()}__" in text, name
    undocumented = [line.split("|")[1].strip() for line in text.splitlines()
                    if line.startswith("| `FLEETWATCH_") and line.rstrip().endswith("|  |")]
    assert undocumented == []
