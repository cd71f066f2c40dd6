"""Loading the SQL that lives in `sql/`: the `{{placeholder}}` templating, statement splitting, and loaders.

Every SQL file (migrations, jobs, views, queries) is a template rendered the same way. This module knows
no store and imports nothing of the pipeline, so the migration runner, the store's own query endpoint,
the scheduler and triage all load SQL through it without an import cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# `{{include dir/file.sql}}`: another file of the same sql/ tree (no `..`), inlined where it stands, so a fragment
# several statements share (the gc line's fields) is written once. A fragment may include others, to this depth (a
# cycle fails instead of looping).
_INCLUDE_DEPTH = 3
_INCLUDE_RE = re.compile(r"\{\{\s*include\s+([A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)*\.sql)\s*\}\}")


class MigrationError(Exception):
    """A migration statement failed; the message names the file and statement."""


@dataclass(frozen=True)
class RenderContext:
    """Values substituted into migration templates."""

    database: str
    ttl_days: int
    cluster: str = ""
    # Retention of profile_raw (the raw profile bytes kept for export), shorter than ttl_days.
    profile_raw_ttl_days: int = 3

    def __post_init__(self) -> None:
        # Both names are spliced into DDL text (identifiers cannot be query parameters): plain identifiers only.
        for what, name in (("database", self.database), ("cluster", self.cluster)):
            if (name or what == "database") and not _IDENTIFIER_RE.match(name):
                raise MigrationError(f"{what} name {name!r} must be a plain identifier")

    def values(self) -> dict[str, str]:
        on_cluster = f"ON CLUSTER '{self.cluster}'" if self.cluster else ""
        return {
            "db": self.database,
            "ttl_days": str(self.ttl_days),
            "profile_raw_ttl_days": str(self.profile_raw_ttl_days),
            "on_cluster": on_cluster,
            "cluster": self.cluster,
            # Engines written as {{replicated}}MergeTree become ReplicatedMergeTree on a cluster; the
            # server's default_replica_path / default_replica_name supply the Keeper path and replica.
            "replicated": "Replicated" if self.cluster else "",
        }


def render(sql: str, ctx: RenderContext) -> str:
    """Substitute `{{placeholders}}`; an unknown name is an error, not silently left in the SQL."""
    values = ctx.values()

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise MigrationError(f"unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER_RE.sub(sub, sql)


def split_statements(sql: str) -> list[str]:
    """Split a SQL script on `;`, respecting quotes and comments. Empty statements are dropped."""
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    quote: str | None = None
    while i < n:
        ch = sql[i]
        if quote:
            buf.append(ch)
            if ch == "\\" and i + 1 < n:
                buf.append(sql[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
            buf.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            buf.append(sql[i:end])
            i = end
            continue
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            buf.append(sql[i:end])
            i = end
            continue
        elif ch == ";":
            statements.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    statements.append("".join(buf))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(stmt: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", stmt, flags=re.S)
    return bool(without_comments.strip())


def load_statement(sql_dir: Path, relative: str, ctx: RenderContext) -> str:
    """The single statement in `sql/<relative>`, rendered. A file with several statements is an error."""
    statements = load_statements(sql_dir, relative, ctx)
    if len(statements) != 1:
        raise ValueError(f"{relative}: expected one statement, found {len(statements)}")
    return statements[0]


def load_statements(sql_dir: Path, relative: str, ctx: RenderContext) -> list[str]:
    text = (sql_dir / relative).read_text(encoding="utf-8")
    for _ in range(_INCLUDE_DEPTH):
        text = _INCLUDE_RE.sub(lambda m: (sql_dir / m.group(1)).read_text(encoding="utf-8").strip(), text)
    if re.search(r"\{\{\s*include\b", text):
        raise MigrationError(f"{relative}: an include must name a .sql file of the same tree, without '..', "
                             f"and includes nest at most {_INCLUDE_DEPTH} deep")
    return split_statements(render(text, ctx))
