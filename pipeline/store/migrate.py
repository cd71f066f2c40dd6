"""Versioned schema migrations from `sql/migrations/NNN_name.sql`.

Files are applied in version order and recorded in `<db>.schema_migrations`. Every statement is written to be
idempotent (`IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`), so a run interrupted halfway, or two workers
migrating at once against one server, converge on the same schema. A failing statement stops the run with
the file, the statement number and the statement text.

Files are templates with a handful of `{{name}}` placeholders, so one file serves a single node and a
cluster (see `render`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.store.client import Store, StoreError

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class MigrationError(Exception):
    """A migration statement failed; the message names the file and statement."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]


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


def discover(sql_dir: Path) -> list[Migration]:
    """All migration files under `sql_dir/migrations`, sorted; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    mig_dir = sql_dir / "migrations"
    for path in sorted(mig_dir.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} already used by {found[version].path.name}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def applied_versions(store: Store, ctx: RenderContext) -> dict[int, str]:
    rows = store.rows(
        f"SELECT version, argMax(checksum, applied_at) FROM {ctx.database}.schema_migrations GROUP BY version"
    )
    return {int(v): str(c) for v, c in rows}


def migrate(store: Store, sql_dir: Path, ctx: RenderContext) -> list[Migration]:
    """Apply every migration not yet recorded; return the ones applied now."""
    store.command(f"CREATE DATABASE IF NOT EXISTS {ctx.database} {ctx.values()['on_cluster']}")
    store.command(
        render(
            "CREATE TABLE IF NOT EXISTS {{db}}.schema_migrations {{on_cluster}} "
            "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')) "
            "ENGINE = {{replicated}}ReplacingMergeTree(applied_at) ORDER BY version",
            ctx,
        )
    )
    done = applied_versions(store, ctx)
    applied: list[Migration] = []
    for mig in discover(sql_dir):
        if mig.version in done:
            if done[mig.version] != mig.checksum:
                log.warning(
                    "migration %s was changed after it was applied (checksum %s, now %s); "
                    "changes to applied migrations are not re-run: add a new migration",
                    mig.path.name, done[mig.version], mig.checksum,
                )
            continue
        apply_file(store, mig, ctx)
        store.command(
            f"INSERT INTO {ctx.database}.schema_migrations (version, name, checksum, applied_at) "
            "VALUES ({v:UInt32}, {n:String}, {c:String}, now64(3))",
            parameters={"v": mig.version, "n": mig.name, "c": mig.checksum},
        )
        applied.append(mig)
        log.info("applied migration %s", mig.path.name)
    return applied


_CREATE_DATA_TABLE_RE = re.compile(
    r"^(?P<head>CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+)(?P<db>\w+)\.(?P<table>\w+)(?P<rest>\s+ON\s+CLUSTER\s.*"
    r"\bENGINE\s*=\s*Replicated\w*MergeTree\b.*)$",
    re.S | re.I,
)
_ALTER_TABLE_RE = re.compile(r"^(?P<head>ALTER\s+TABLE\s+)(?P<db>\w+)\.(?P<table>\w+)(?P<rest>\s.*)$", re.S | re.I)
_ORDER_BY_FIRST_RE = re.compile(r"\bORDER\s+BY\s*\(?\s*([A-Za-z_]\w*)", re.I)
_LEADING_COMMENTS_RE = re.compile(r"^(?:\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/))*\s*", re.S)
LOCAL_SUFFIX = "_local"


def cluster_statements(statement: str, ctx: RenderContext) -> list[str]:
    """One rendered statement as it runs on a cluster.

    A data table (`CREATE TABLE IF NOT EXISTS db.name ON CLUSTER ... ENGINE = Replicated*MergeTree`) becomes
    `db.name_local` on every node, plus a Distributed `db.name` in front of it with the same columns, so
    every reader and writer keeps using `db.name`. Rows are sharded by the table's first ORDER BY column
    (service for most tables), so one service's rows, and every version of a ReplacingMergeTree key, live on
    one shard: FINAL and per-service window functions stay correct. `ALTER TABLE db.name` is applied to the
    local table and then to the front. Anything else runs unchanged.
    """
    statement = _LEADING_COMMENTS_RE.sub("", statement)
    create = _CREATE_DATA_TABLE_RE.match(statement)
    if create:
        db, table = create.group("db"), create.group("table")
        order_by = _ORDER_BY_FIRST_RE.search(create.group("rest"))
        key = f"cityHash64({order_by.group(1)})" if order_by else "rand()"
        local = f"{create.group('head')}{db}.{table}{LOCAL_SUFFIX}{create.group('rest')}"
        front = (
            f"CREATE TABLE IF NOT EXISTS {db}.{table} ON CLUSTER '{ctx.cluster}' AS {db}.{table}{LOCAL_SUFFIX} "
            f"ENGINE = Distributed('{ctx.cluster}', '{db}', '{table}{LOCAL_SUFFIX}', {key})"
        )
        return [local, front]
    alter = _ALTER_TABLE_RE.match(statement)
    if alter and not alter.group("table").endswith(LOCAL_SUFFIX):
        db, table = alter.group("db"), alter.group("table")
        local = f"{alter.group('head')}{db}.{table}{LOCAL_SUFFIX}{alter.group('rest')}"
        return [local, statement]
    return [statement]


def render_statements(sql: str, ctx: RenderContext) -> list[str]:
    """The statements of one migration file as they run for `ctx` (single node or cluster)."""
    statements = split_statements(render(sql, ctx))
    if not ctx.cluster:
        return statements
    return [out for statement in statements for out in cluster_statements(statement, ctx)]


def apply_file(store: Store, mig: Migration, ctx: RenderContext) -> None:
    statements = render_statements(mig.text, ctx)
    for index, statement in enumerate(statements, start=1):
        try:
            store.command(statement)
        except StoreError as exc:
            raise MigrationError(
                f"{mig.path.name}: statement {index} of {len(statements)} failed: {exc}\n--- statement ---\n"
                f"{statement}"
            ) from exc


def context_from_settings(settings: object) -> RenderContext:
    return RenderContext(
        database=settings.database,  # type: ignore[attr-defined]
        ttl_days=settings.retention_days,  # type: ignore[attr-defined]
        cluster=settings.cluster,  # type: ignore[attr-defined]
        profile_raw_ttl_days=getattr(settings, "profile_raw_retention_days", 3),
    )
