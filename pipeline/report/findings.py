"""What a triage report is made of: findings, the report, and the copy-paste `dig` queries.

Shared by the triage assembly (`report.triage`) and the site attribution (`report.sites`), which both build
findings; kept apart so neither imports the other's internals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.jobs.windows import fmt_time


@dataclass
class Finding:
    question: str            # gc_storm, leak, cancel_gap
    subject: str             # service/instance, or parent -> child edge
    severity: str
    headline: str
    evidence: dict[str, Any]
    dig_sql: str


@dataclass
class Report:
    scope: str
    since: str
    gc_storms: list[Finding] = field(default_factory=list)
    leaks: list[Finding] = field(default_factory=list)
    cancel_gaps: list[Finding] = field(default_factory=list)
    cancel_gaps_available: bool = True
    notes: list[str] = field(default_factory=list)


def sql_literal(value: Any) -> str:
    """A value as a ClickHouse literal, for the copy-paste `dig` queries shown to people (never executed here)."""
    if isinstance(value, datetime):
        return f"'{fmt_time(value)}'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def fill_parameters(sql: str, params: dict[str, Any]) -> str:
    """Replace `{name:Type}` placeholders by literals so the query can be pasted into `fleetwatch sql`."""
    return re.sub(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:[^}]*\}",
                  lambda m: sql_literal(params[m.group(1)]) if m.group(1) in params else m.group(0), sql)
