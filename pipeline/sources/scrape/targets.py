"""Scrape targets: TOML `[[scrape]]` tables and Prometheus `file_sd` JSON files, resolved to one list.

A file_sd file is the format Prometheus' file-based service discovery reads:
`[{"targets": ["10.0.0.7:6060", ...], "labels": {"service": "api", "instance": "pod-7"}}]`. Files are
re-read when their modification time or size changes, so a deployment tool (or a Kubernetes ConfigMap)
can rewrite them while `fleetwatch run` is running. A file that cannot be read or parsed keeps its last
good target list and is logged, so a half-written file never empties the fleet.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError

from pipeline.config import PprofSettings, ScrapeTarget, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One resolved target with every default filled in."""

    url: str                  # base URL, no trailing slash
    service: str
    instance: str
    interval_seconds: float
    timeout_seconds: float
    headers: tuple[tuple[str, str], ...]
    profiles: tuple[str, ...]
    goroutine_debug: int

    def profile_url(self, profile: str) -> str:
        """The URL of one profile. goroutine as debug=2 text when asked; everything else protobuf."""
        if profile == "goroutine" and self.goroutine_debug == 2:
            return f"{self.url}/debug/pprof/goroutine?debug=2"
        return f"{self.url}/debug/pprof/{profile}"


def resolve(spec: ScrapeTarget, defaults: PprofSettings) -> Target:
    parts = urlsplit(spec.url)
    return Target(
        url=spec.url.rstrip("/"),
        service=spec.service,
        instance=spec.instance or parts.netloc,
        interval_seconds=spec.interval_seconds,
        timeout_seconds=spec.timeout_seconds or defaults.scrape_timeout_seconds,
        headers=tuple(sorted(spec.headers.items())),
        profiles=tuple(spec.profiles if spec.profiles is not None else defaults.scrape_profiles),
        goroutine_debug=spec.goroutine_debug if spec.goroutine_debug is not None else defaults.goroutine_debug,
    )


class _Group(BaseModel):
    targets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


def parse_file_sd(text: str, defaults: PprofSettings) -> list[Target]:
    """Targets from one file_sd document. Raises ValueError on a malformed document."""
    try:
        groups = [_Group.model_validate(g) for g in json.loads(text)]
    except (json.JSONDecodeError, ValidationError, TypeError) as exc:
        raise ValueError(f"not a file_sd target list: {exc}") from None
    out: list[Target] = []
    for group in groups:
        labels = group.labels
        for address in group.targets:
            url = address if "://" in address else f"{defaults.file_sd_scheme}://{address}"
            spec = ScrapeTarget(
                url=url,
                service=labels.get("service") or labels.get("job") or "unknown",
                instance=labels.get("instance", "") if len(group.targets) == 1 else "",
                interval_seconds=float(labels.get("interval_seconds", 60.0)),
            )
            out.append(resolve(spec, defaults))
    return out


class TargetSet:
    """The current targets: static ones plus every file_sd file, re-read when a file changes."""

    def __init__(self, settings: Settings) -> None:
        self.defaults = settings.pprof
        self.static = [resolve(spec, settings.pprof) for spec in settings.scrape]
        self.files = list(settings.pprof.file_sd)
        self._seen: dict[Path, tuple[int, int]] = {}
        self._from_files: dict[Path, list[Target]] = {}

    def refresh(self) -> list[Target]:
        """Re-read changed files; return every target, deduplicated by (url, instance)."""
        for path in self.files:
            try:
                stat = path.stat()
            except OSError as exc:
                if path not in self._seen:
                    log.warning("scrape: file_sd %s cannot be read: %s", path, exc)
                    self._seen[path] = (-1, -1)
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            if self._seen.get(path) == key:
                continue
            self._seen[path] = key
            try:
                self._from_files[path] = parse_file_sd(path.read_text(encoding="utf-8"), self.defaults)
                log.info("scrape: %d target(s) from %s", len(self._from_files[path]), path)
            except (OSError, ValueError) as exc:
                log.warning("scrape: file_sd %s kept its previous targets: %s", path, exc)
        merged: dict[tuple[str, str], Target] = {}
        for target in [*self.static, *(t for ts in self._from_files.values() for t in ts)]:
            merged.setdefault((target.url, target.instance), target)
        return list(merged.values())
