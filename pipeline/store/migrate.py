"""Versioned schema migrations from `sql/migrations/NNN_name.sql`.

Files are applied in version order and recorded in `<db>.schema_migrations`. Every statement is written to be
idempotent (`IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`), so a run interrupted halfway, or two workers
migrating at once against one server, converge on the same schema. A failing statement stops the run with
the file, the statement number and the statement text.

Files are templates with a handful of `{{name}}` placeholders, so one file serves a single node and a
cluster (see `render`).

A statement that must only run in one state of the store (a forward migration that copies an old table
into a new layout and swaps the two) carries guard comments, checked just before it runs:

    -- only if: otel_logs.TimestampTime exists
    -- only if: otel_logs_next missing

Every guard of a statement must hold, else it is skipped. Guards are what make a copy-and-swap migration
safe to re-run after it was interrupted anywhere: the state of the tables, not the migration record, says
which steps are still to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.sqlfiles import MigrationError, RenderContext, render, split_statements
from pipeline.store.client import Store, StoreError

# The templating (placeholders, statement splitting) lives in pipeline/sqlfiles.py, below the store, so the
# store's own SQL files load without an import cycle; these names stay importable from here.
__all__ = ["Migration", "MigrationError", "RenderContext", "migrate", "render", "split_statements"]

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


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
    """Apply every migration not yet recorded; return the ones applied now.

    A store that already has every migration (every command's start, every worker's) is checked with one statement,
    the read of the recorded versions; the database and the record table are created (idempotently) only when that
    read fails or finds a migration to apply."""
    migrations = discover(sql_dir)
    try:
        done = applied_versions(store, ctx)
    except StoreError:  # no database or no schema_migrations yet
        done = {}
    if any(mig.version not in done for mig in migrations):
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
    for mig in migrations:
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
_ORDER_BY_RE = re.compile(r"\bORDER\s+BY\s*([^\n]*)", re.I)
_PLAIN_IDENTIFIER_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*$")
_DROP_OR_TRUNCATE_RE = re.compile(
    r"^(?P<head>(?:DROP|TRUNCATE)\s+TABLE\s+(?:IF\s+EXISTS\s+)?)(?P<db>\w+)\.(?P<table>\w+)(?P<rest>\s.*)?$",
    re.S | re.I,
)
_EXCHANGE_RE = re.compile(
    r"^EXCHANGE\s+TABLES\s+(?P<db>\w+)\.(?P<a>\w+)\s+AND\s+(?P=db)\.(?P<b>\w+)\b", re.I
)
_LEADING_COMMENTS_RE = re.compile(r"^(?:\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/))*\s*", re.S)
LOCAL_SUFFIX = "_local"


def _shard_key(rest: str) -> str:
    """cityHash64 of the first plain column of the ORDER BY (an expression such as
    toStartOfFiveMinutes(Timestamp) would spread one service over every shard), else rand()."""
    order_by = _ORDER_BY_RE.search(rest)
    if not order_by:
        return "rand()"
    text = order_by.group(1).strip()
    if text.startswith("("):
        text = text[1:]
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    for part in parts:
        plain = _PLAIN_IDENTIFIER_RE.match(part)
        if plain:
            return f"cityHash64({plain.group(1)})"
    return "rand()"


def _front(ctx: RenderContext, db: str, table: str, key: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{table} ON CLUSTER '{ctx.cluster}' AS {db}.{table}{LOCAL_SUFFIX} "
        f"ENGINE = Distributed('{ctx.cluster}', '{db}', '{table}{LOCAL_SUFFIX}', {key})"
    )


def cluster_statements(statement: str, ctx: RenderContext, keys: dict[str, str] | None = None) -> list[str]:
    """One rendered statement as it runs on a cluster.

    A data table (`CREATE TABLE IF NOT EXISTS db.name ON CLUSTER ... ENGINE = Replicated*MergeTree`) becomes
    `db.name_local` on every node, plus a Distributed `db.name` in front of it with the same columns, so
    every reader and writer keeps using `db.name`. Rows are sharded by the table's first ORDER BY column
    (service for most tables), so one service's rows, and every version of a ReplacingMergeTree key, live on
    one shard: FINAL and per-service window functions stay correct. `ALTER TABLE db.name` is applied to the
    local table and then to the front. Anything else runs unchanged.
    """
    keys = {} if keys is None else keys
    statement = _LEADING_COMMENTS_RE.sub("", statement)
    create = _CREATE_DATA_TABLE_RE.match(statement)
    if create:
        db, table = create.group("db"), create.group("table")
        key = keys[table] = _shard_key(create.group("rest"))
        local = f"{create.group('head')}{db}.{table}{LOCAL_SUFFIX}{create.group('rest')}"
        return [local, _front(ctx, db, table, key)]
    exchange = _EXCHANGE_RE.match(statement)
    if exchange:
        # The data lives in the local tables: swap those, then rebuild both fronts over them, so each
        # front's columns are its (new) local table's columns.
        db, table, other = exchange.group("db"), exchange.group("a"), exchange.group("b")
        return [
            f"EXCHANGE TABLES {db}.{table}{LOCAL_SUFFIX} AND {db}.{other}{LOCAL_SUFFIX} ON CLUSTER '{ctx.cluster}'",
            f"DROP TABLE IF EXISTS {db}.{table} ON CLUSTER '{ctx.cluster}' SYNC",
            f"DROP TABLE IF EXISTS {db}.{other} ON CLUSTER '{ctx.cluster}' SYNC",
            _front(ctx, db, table, keys.get(other) or keys.get(table) or "rand()"),
            _front(ctx, db, other, keys.get(table) or keys.get(other) or "rand()"),
        ]
    dropped = _DROP_OR_TRUNCATE_RE.match(statement)
    if dropped and not dropped.group("table").endswith(LOCAL_SUFFIX):
        db, table, rest = dropped.group("db"), dropped.group("table"), dropped.group("rest") or ""
        return [f"{dropped.group('head')}{db}.{table}{LOCAL_SUFFIX}{rest}", statement]
    alter = _ALTER_TABLE_RE.match(statement)
    if alter and not alter.group("table").endswith(LOCAL_SUFFIX):
        db, table = alter.group("db"), alter.group("table")
        local = f"{alter.group('head')}{db}.{table}{LOCAL_SUFFIX}{alter.group('rest')}"
        return [local, statement]
    return [statement]


@dataclass(frozen=True)
class Guard:
    """`-- only if: table[.column] exists|missing`: a condition on the store's catalog."""

    table: str
    column: str
    present: bool


_GUARD_RE = re.compile(r"^\s*--\s*only if:\s*(\w+)(?:\.(\w+))?\s+(exists|missing)\s*$", re.M | re.I)


def guards_of(statement: str) -> tuple[Guard, ...]:
    return tuple(
        Guard(m.group(1), m.group(2) or "", m.group(3).lower() == "exists") for m in _GUARD_RE.finditer(statement)
    )


def _catalog_count(store: Store, ctx: RenderContext, table: str, column: str) -> int:
    if column:
        return int(store.scalar(
            "SELECT count() FROM system.columns WHERE database = {d:String} AND table = {t:String} "
            "AND name = {c:String}",
            {"d": ctx.database, "t": table, "c": column},
        ) or 0)
    return int(store.scalar(
        "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        {"d": ctx.database, "t": table},
    ) or 0)


def guard_holds(store: Store, ctx: RenderContext, guard: Guard) -> bool:
    """On a cluster the data is in `<table>_local`: its state decides (a front can lag behind it when a
    swap was interrupted between the local tables and the fronts). Other objects are checked by name."""
    table = guard.table
    if ctx.cluster and _catalog_count(store, ctx, table + LOCAL_SUFFIX, ""):
        table += LOCAL_SUFFIX
    return bool(_catalog_count(store, ctx, table, guard.column)) == guard.present


def render_guarded(sql: str, ctx: RenderContext) -> list[tuple[tuple[Guard, ...], str]]:
    """The statements of one migration file as they run for `ctx`, each with its guards."""
    out: list[tuple[tuple[Guard, ...], str]] = []
    keys: dict[str, str] = {}
    for statement in split_statements(render(sql, ctx)):
        guards = guards_of(statement)
        if not ctx.cluster:
            out.append((guards, statement))
            continue
        expanded = cluster_statements(statement, ctx, keys)
        exchange = _EXCHANGE_RE.match(_LEADING_COMMENTS_RE.sub("", statement))
        if exchange:
            # The swap of the local tables keeps the statement's guards; the fronts are rebuilt whenever
            # their local table exists, so a run interrupted between the two catches up.
            swap, drop_a, drop_b, front_a, front_b = expanded
            has_a, has_b = (Guard(exchange.group("a"), "", True),), (Guard(exchange.group("b"), "", True),)
            out.extend([(guards, swap), (has_a, drop_a), (has_b, drop_b), (has_a, front_a), (has_b, front_b)])
            continue
        out.extend((guards, s) for s in expanded)
    return out


def render_statements(sql: str, ctx: RenderContext) -> list[str]:
    """The statements of one migration file as they run for `ctx` (single node or cluster)."""
    return [statement for _, statement in render_guarded(sql, ctx)]


def apply_file(store: Store, mig: Migration, ctx: RenderContext) -> None:
    statements = render_guarded(mig.text, ctx)
    for index, (guards, statement) in enumerate(statements, start=1):
        if not all(guard_holds(store, ctx, guard) for guard in guards):
            log.info("%s: statement %d skipped: its guards do not hold", mig.path.name, index)
            continue
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
