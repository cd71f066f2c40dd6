"""The profile scraper: pulls /debug/pprof profiles from Go services inside `fleetwatch run`.

Targets come from TOML `[[scrape]]` tables and Prometheus file_sd files (targets.py); fetch.py makes one
bounded request; scraper.py schedules, records every attempt in `scrapes` and writes through the sink.
`start(ctx)` returns None when no target and no file_sd file is configured.
"""

from __future__ import annotations

from pipeline.runtime import RunContext
from pipeline.sources.scrape.scraper import Scraper


def start(ctx: RunContext) -> Scraper | None:
    if not ctx.settings.scrape and not ctx.settings.pprof.file_sd:
        return None
    return Scraper(ctx.settings, ctx.sink, ctx.telemetry).start()


__all__ = ["Scraper", "start"]
