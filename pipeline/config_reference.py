"""docs/configuration.md, generated from the settings model so the reference cannot drift from the code.

Each setting's description is the comment block written directly above it in pipeline/config.py (or the
class docstring for a section); the environment variable, TOML key, type and default come from the model.
Run `python -m pipeline.config_reference` to rewrite the file; a test fails when it is stale.
"""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from pipeline import config

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

HEADER = """# Configuration

Every setting of every Fleetwatch process, generated from `pipeline/config.py`
(`python -m pipeline.config_reference`).

Precedence, highest first: command-line flags (`--clickhouse-dsn`, `--kafka-bootstrap`, `--otlp-grpc`,
`--otlp-http`, `--query-http`, ...), `FLEETWATCH_*` environment variables, the TOML file named by `--config`
or `FLEETWATCH_CONFIG`, then the defaults below. Sections are tables in TOML (`[kafka]`, `[detect]`, ...) and
use a double underscore in the environment (`FLEETWATCH_DETECT__GC_CPU_WARN=0.3`).

```toml
# fleetwatch.toml
clickhouse_dsn = "https://fleetwatch:secret@clickhouse:8443"
retention_days = 14

[kafka]
bootstrap = "kafka-1:9092,kafka-2:9092"
group_id = "fleetwatch-prod"

[detect]
gc_cpu_warn = 0.3
```

Secrets (`otlp.token`, `query.password`, `kafka.sasl_password`, the DSN password) are never logged; each
can also be read from a file (`*_file` settings) so a mounted secret never passes through the environment.
"""


def _field_comments(cls: type) -> dict[str, str]:
    """The comment lines directly above each annotated attribute of `cls`, joined into one sentence."""
    source = inspect.getsource(cls)
    lines = source.splitlines()
    comments: dict[str, str] = {}
    previous = ""
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            block: list[str] = []
            index = node.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#"):
                block.insert(0, lines[index].strip().lstrip("#").strip())
                index -= 1
            follows_field = index >= 0 and bool(lines[index].strip()) and not block
            # A comment above a run of fields (no blank line between them) describes the whole run.
            comments[node.target.id] = " ".join(block) or (previous if follows_field else "")
            previous = comments[node.target.id]
        else:
            previous = ""
    return comments


def _type_name(info: FieldInfo) -> str:
    text = getattr(info.annotation, "__name__", None) or str(info.annotation)
    text = text.replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")
    return text.replace(" | None", ", optional").replace(" | ", " or ")


def _default(info: FieldInfo) -> str:
    value: Any = info.get_default(call_default_factory=True)
    if value is None or value == "":
        return "*(empty)*"
    if isinstance(value, SecretStr):
        return "*(secret)*"
    if isinstance(value, Path):
        return "`sql/` beside the package" if value == config.REPO_SQL_DIR else f"`{value}`"
    return f"`{value}`"


def _rows(model: type[BaseModel], env_prefix: str, toml_prefix: str) -> list[str]:
    comments = _field_comments(model)
    rows = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue
        env = f"{env_prefix}{name.upper()}"
        rows.append(
            f"| `{env}` | `{toml_prefix}{name}` | {_type_name(info)} | {_default(info)} | {comments.get(name, '')} |"
        )
    return rows


def render_reference() -> str:
    out = [HEADER]
    table_head = ["| environment | TOML | type | default | meaning |", "|---|---|---|---|---|"]
    out += ["## General", "", (inspect.getdoc(config.Settings) or "").splitlines()[0], "", *table_head]
    out += _rows(config.Settings, "FLEETWATCH_", "")
    for name, info in config.Settings.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            doc = " ".join((inspect.getdoc(section) or "").split())
            out += ["", f"## `[{name}]`", "", doc, "", *table_head]
            out += _rows(section, f"FLEETWATCH_{name.upper()}__", f"{name}.")
    out += _list_sections()
    return "\n".join(out) + "\n"


def _list_sections() -> list[str]:
    """Settings that are lists of tables (`[[scrape]]`): one table of keys per item type."""
    out: list[str] = []
    for name, info in config.Settings.model_fields.items():
        args = getattr(info.annotation, "__args__", ())
        item = args[0] if len(args) == 1 else None
        if not (isinstance(item, type) and issubclass(item, BaseModel)):
            continue
        doc = " ".join((inspect.getdoc(item) or "").split())
        out += ["", f"## `[[{name}]]`", "", doc,
                f"In the environment: `FLEETWATCH_{name.upper()}` as a JSON list of objects.", "",
                "| key | type | default | meaning |", "|---|---|---|---|"]
        comments = _field_comments(item)
        for field, field_info in item.model_fields.items():
            default = "*(required)*" if field_info.is_required() else _default(field_info)
            out.append(f"| `{field}` | {_type_name(field_info)} | {default} | {comments.get(field, '')} |")
    return out


def main() -> int:
    DOC_PATH.write_text(render_reference(), encoding="utf-8")
    print(f"wrote {DOC_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
