"""Triage, by code location: the goroutine sites behind a leak and the allocation sites behind a GC storm.

A verdict per instance tells on-call *where* to look; the engineer who fixes it needs the function and
file:line. This module reads the site tables the jobs write (leak_sites, storm_sites, through
sql/queries/triage_*_sites.sql) and attaches the sites, each with its own ready-to-run `dig` query, to the
findings `pipeline.report.triage` builds. Instances whose profiles prove a leak that the goroutine count does not
show (a constant number of goroutines blocked forever) get a finding of their own.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel

from pipeline.report.findings import Finding, fill_parameters
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext

SITES_KEY = "sites"
ALLOC_SITES_KEY = "alloc_sites"


class _Site(BaseModel):
    """A code location as triage shows it: function and `file:line`, plus what was found there."""

    function: str
    file_line: str
    dig: str

    def shown(self) -> dict[str, object]:
        data = self.model_dump()
        data["file:line"] = data.pop("file_line")
        return data


class LeakSite(_Site):
    """One flagged goroutine site."""

    created_by: str
    wait_reason: str
    goroutines: int
    leaked_goroutines: int
    growth_per_hour: float
    oldest_wait_minutes: int
    evidence: list[str]
    severity: str
    example_stack: str


class AllocSite(_Site):
    """One of a storm's top allocation sites."""

    rank: int
    bytes_per_sec: float
    objects_per_sec: float
    share: float


def leak_sites_by_instance(store: Store, ctx: RenderContext, sql_dir: Path,
                           params: dict[str, object]) -> dict[tuple[str, str], list[LeakSite]]:
    """(service, instance) -> its flagged sites at the latest evaluation, worst first."""
    dig_sql = load_statement(sql_dir, "queries/dig_leak_site.sql", ctx)
    out: dict[tuple[str, str], list[LeakSite]] = defaultdict(list)
    for r in store.dicts(load_statement(sql_dir, "queries/triage_leak_sites.sql", ctx), params):
        dig = fill_parameters(dig_sql, {"service": r["service"], "instance": r["instance"],
                                        "function": r["function"], "file": r["file"], "line": r["line"],
                                        "since": params["since"]})
        out[(str(r["service"]), str(r["instance"]))].append(LeakSite(
            function=str(r["function"]), file_line=f"{r['file']}:{r['line']}", created_by=str(r["created_by"]),
            wait_reason=str(r["wait_reason"]), goroutines=int(r["goroutines"]),
            leaked_goroutines=int(r["leaked_goroutines"]),
            growth_per_hour=round(float(r["growth_per_hour"]), 1),
            oldest_wait_minutes=int(r["oldest_wait_minutes"]),
            evidence=list(r["evidence"]), severity=str(r["severity"]),
            example_stack=str(r["example_stack"]), dig=dig,
        ))
    return out


def leak_site_headline(site: LeakSite, more: int) -> str:
    created = f", created by {site.created_by}" if site.created_by else ""
    wait = f", {site.wait_reason}" if site.wait_reason else ""
    tail = f" (+{more} more site(s))" if more else ""
    return (f"goroutines pile up at {site.function} {site.file_line}{created}{wait}: {site.goroutines} goroutines, "
            f"{site.growth_per_hour:+g}/h, evidence {'+'.join(site.evidence)}{tail}")


def storm_sites(store: Store, ctx: RenderContext, sql_dir: Path, *, service: str, instance: str,
                since: str) -> list[AllocSite]:
    """The top three allocation sites of the instance's latest storm window since `since`."""
    dig_sql = load_statement(sql_dir, "queries/dig_storm_site.sql", ctx)
    rows = store.dicts(load_statement(sql_dir, "queries/triage_storm_sites.sql", ctx),
                       {"service": service, "instance": instance, "since": since})
    return [AllocSite(
        rank=int(r["rank"]), function=str(r["function"]), file_line=f"{r['file']}:{r['line']}",
        bytes_per_sec=round(float(r["bytes_per_sec"]), 1), objects_per_sec=round(float(r["objects_per_sec"]), 1),
        share=round(float(r["share"]), 4),
        dig=fill_parameters(dig_sql, {"service": service, "instance": instance, "function": r["function"],
                                      "file": r["file"], "line": r["line"], "since": since}),
    ) for r in rows]


def alloc_headline(sites: list[AllocSite]) -> str:
    if not sites:
        return ""
    top = sites[0]
    return f"; top allocator {top.function} {top.file_line} {top.bytes_per_sec / 1048576:.1f} MiB/s " \
           f"({100 * top.share:.0f}% of the instance)"


def site_lines(evidence: dict[str, object]) -> list[str]:
    """The text lines triage prints under a finding for its sites, each followed by its dig query."""
    lines: list[str] = []
    for site in evidence.get(SITES_KEY) or []:
        lines.append(f"site: {site['function']} {site['file:line']}"
                     + (f", created by {site['created_by']}" if site["created_by"] else "")
                     + (f", {site['wait_reason']}" if site["wait_reason"] else "")
                     + f", {site['goroutines']} goroutines, {site['growth_per_hour']:+g}/h"
                     + (f", waiting {site['oldest_wait_minutes']} min" if site["oldest_wait_minutes"] else "")
                     + f" [{' '.join(site['evidence'])}]")
        lines.append("  dig: " + " ".join(str(site["dig"]).split()))
    for site in evidence.get(ALLOC_SITES_KEY) or []:
        lines.append(f"alloc site {site['rank']}: {site['function']} {site['file:line']} "
                     f"{site['bytes_per_sec'] / 1048576:.2f} MiB/s, {site['objects_per_sec']:.0f} objects/s, "
                     f"{100 * site['share']:.1f}% of the instance")
        lines.append("  dig: " + " ".join(str(site["dig"]).split()))
    return lines


def enrich(store: Store, ctx: RenderContext, sql_dir: Path, params: dict[str, object],
           storms: list[Finding], leaks: list[Finding]) -> None:
    """Name the code: top allocation sites under each storm, flagged goroutine sites under each goroutine
    leak, and a finding of its own for an instance whose sites leak while its count shows no trend."""
    since = str(params["since"])
    for finding in storms:
        service, instance = finding.subject.split("/", 1)
        sites = storm_sites(store, ctx, sql_dir, service=service, instance=instance, since=since)
        if sites:
            finding.evidence[ALLOC_SITES_KEY] = [s.shown() for s in sites]
            finding.headline += alloc_headline(sites)
    by_instance = leak_sites_by_instance(store, ctx, sql_dir, params)
    for finding in leaks:
        service, instance = finding.subject.split("/", 1)
        if finding.evidence.get("signal") == "goroutines" and (service, instance) in by_instance:
            sites_here = by_instance.pop((service, instance))
            finding.evidence[SITES_KEY] = [s.shown() for s in sites_here]
            finding.headline += "; " + leak_site_headline(sites_here[0], len(sites_here) - 1)
    for (service, instance), sites_here in by_instance.items():
        top = sites_here[0]
        severity = "critical" if any(s.severity == "critical" for s in sites_here) else "warning"
        leaks.append(Finding("leak", f"{service}/{instance}", severity,
                             leak_site_headline(top, len(sites_here) - 1),
                             {"signal": "goroutine_sites", SITES_KEY: [s.shown() for s in sites_here]}, top.dig))
