"""Build the Grafana dashboards as code: `python deploy/grafana/build_dashboards.py` writes
deploy/grafana/dashboards/*.json (committed; tests/unit/test_dashboards_built.py checks they are current).

Layout, titles and units live here; every panel's SQL lives in sql/dashboards/<dashboard>/<panel>.sql, so the
queries are reviewed, and tested against a real store, as SQL. The dashboards use grafana-foundation-sdk's
builders; the SDK has no type for the ClickHouse plugin's query, so `ClickHouseQuery` below supplies it
(the plugin's SQL-editor query: rawSql, format, queryType), and no trace panel builder, so the trace view
is a generic panel of type "traces".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import histogram, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

REPO = Path(__file__).resolve().parents[2]
SQL_DIR = REPO / "sql" / "dashboards"
OUT_DIR = Path(__file__).resolve().parent / "dashboards"
PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE = model.DataSourceRef(type_val=PLUGIN, uid="${datasource}")

# The plugin's result formats (its Format enum) and the matching query types.
TIME_SERIES, TABLE, TRACE = 0, 1, 3
_QUERY_TYPES = {TIME_SERIES: "timeseries", TABLE: "table", TRACE: "traces"}


def panel_sql(name: str) -> str:
    """A panel's SQL file without its leading comment lines (they document the file, not the panel)."""
    lines = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8").splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


class ClickHouseQuery(cogvariants.Dataquery):
    def __init__(self, sql: str, fmt: int, ref_id: str = "A") -> None:
        self.sql, self.fmt, self.ref_id = sql, fmt, ref_id

    def to_json(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id, "datasource": DATASOURCE.to_json(), "editorType": "sql",
            "format": self.fmt, "queryType": _QUERY_TYPES[self.fmt], "rawSql": self.sql,
        }


class Query(cogbuilder.Builder[ClickHouseQuery]):
    def __init__(self, name: str, fmt: int = TIME_SERIES) -> None:
        self._query = ClickHouseQuery(panel_sql(name), fmt)

    def build(self) -> ClickHouseQuery:
        return self._query


# -- variables -------------------------------------------------------------------------------------------
def datasource_variable() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("datasource").label("Data source").type(PLUGIN)


def sql_variable(name: str, label: str) -> dash.QueryVariable:
    sql = panel_sql(f"variables/{name}")
    return (
        dash.QueryVariable(name).label(label).datasource(DATASOURCE)
        .query({"rawSql": sql, "editorType": "sql", "format": TABLE, "queryType": "table", "refId": name})
        .multi(True).include_all(True)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def base(uid: str, title: str, description: str, *, instance: bool = True) -> dash.Dashboard:
    board = (
        dash.Dashboard(title).uid(uid).description(description).tags(["fleetwatch", "go"])
        .time("now-6h", "now").refresh("1m").timezone("utc").editable()
        .with_variable(datasource_variable()).with_variable(sql_variable("service", "Service"))
    )
    if instance:
        board = board.with_variable(sql_variable("instance", "Instance"))
    for other_uid, other_title in DASHBOARDS_INDEX:
        if other_uid != uid:
            board = board.link(
                dash.DashboardLink(other_title).type(model.DashboardLinkType.LINK)
                .url(f"/d/{other_uid}?${{__url_time_range}}&${{__all_variables}}")
            )
    return board


def series(title: str, name: str, unit: str, *, width: int = 12, description: str = "") -> timeseries.Panel:
    return (
        timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
        .with_target(Query(name)).unit(unit).height(8).span(width)
    )


def grid(title: str, name: str, *, width: int = 24, height: int = 8, description: str = "") -> table.Panel:
    return (
        table.Panel().title(title).description(description).datasource(DATASOURCE)
        .with_target(Query(name, TABLE)).height(height).span(width)
    )


def trace_link() -> Any:
    """A field link that opens the clicked trace id in the Cancellation dashboard's trace view."""
    link = {"title": "Open trace", "url": f"/d/{CANCEL_UID}?${{__url_time_range}}&var-trace_id=${{__value.raw}}"}
    return model.DynamicConfigValue(id_val="links", value=[link])


# -- dashboards ------------------------------------------------------------------------------------------
FLEET_UID, GC_UID, LEAKS_UID, CANCEL_UID = "fleetwatch-fleet", "fleetwatch-gc", "fleetwatch-leaks", "fleetwatch-cancel"
DASHBOARDS_INDEX = [
    (FLEET_UID, "Fleet overview"), (GC_UID, "GC"), (LEAKS_UID, "Goroutine leaks"), (CANCEL_UID, "Cancellation"),
]


def fleet() -> dash.Dashboard:
    return (
        base(FLEET_UID, "Fleetwatch · Fleet overview",
             "GC storms, goroutine leaks and cancellation gaps by service.", instance=False)
        .with_panel(grid("Culprits by service", "fleet/culprits", height=9,
                         description="Instances in a GC storm, leaking instances and call edges with cancel gaps."))
        .with_panel(series("Instances in a GC storm", "fleet/storm_instances", "short", width=8))
        .with_panel(series("Leaking instances", "fleet/leaking_instances", "short", width=8))
        .with_panel(series("Cancellation overruns", "fleet/cancel_overruns", "short", width=8))
    )


def gc() -> dash.Dashboard:
    return (
        base(GC_UID, "Fleetwatch · GC", "Go garbage collector pressure per instance, from gctrace and detections.")
        .with_panel(series("GC CPU", "gc/gc_cpu", "percent",
                           description="GC share of wall time x GOMAXPROCS, per detection window."))
        .with_panel(series("Stop-the-world p99", "gc/stw_p99", "ms"))
        .with_panel(series("GC rate", "gc/gc_rate", "cps"))
        .with_panel(series("Heap live vs goal", "gc/heap_live_goal", "decmbytes"))
        .with_panel(grid("GC storms", "gc/storms"))
        .with_panel(grid("Storm allocation sites", "gc/storm_sites",
                         description="Top allocation sites (allocs profiles) during the storm windows."))
    )


def leaks() -> dash.Dashboard:
    return (
        base(LEAKS_UID, "Fleetwatch · Goroutine leaks", "Goroutine counts, their trend and the leak suspects.")
        .with_panel(series("Goroutines", "leaks/goroutines", "short"))
        .with_panel(series("Goroutine floor slope", "leaks/slopes", "short",
                           description="Theil-Sen slope of the goroutine floor, goroutines per hour."))
        .with_panel(grid("Leak suspects", "leaks/suspects"))
        .with_panel(grid("Leaking sites", "leaks/sites",
                         description="Goroutine sites flagged by leak_sites: blocking frame, creator, evidence."))
        .with_panel(series("Goroutines per leaking site", "leaks/site_goroutines", "short", width=24))
    )


def cancel() -> dash.Dashboard:
    trace_panel = (
        dash.Panel().type("traces").title("Trace").datasource(DATASOURCE)
        .with_target(Query("cancel/trace", TRACE)).height(12).span(24)
    )
    return (
        base(CANCEL_UID, "Fleetwatch · Cancellation", "Work that keeps running after its request was cancelled.")
        .with_variable(dash.TextBoxVariable("trace_id").label("Trace id"))
        .with_panel(
            grid("Edges with cancellation gaps", "cancel/edges", height=9)
            .override_by_name("trace_id", [trace_link()])
        )
        .with_panel(
            histogram.Panel().title("Overrun past cancellation").datasource(DATASOURCE)
            .with_target(Query("cancel/overrun_distribution", TABLE)).unit("ms").height(8).span(8)
        )
        .with_panel(
            grid("Longest overruns", "cancel/overrun_spans", width=16)
            .override_by_name("trace_id", [trace_link()])
        )
        .with_panel(trace_panel)
    )


BUILDERS = {"fleet": fleet, "gc": gc, "leaks": leaks, "cancel": cancel}


def render_all() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    out = {}
    for name, build in BUILDERS.items():
        board = build().build()
        out[f"{name}.json"] = json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
    return out


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for file_name, text in render_all().items():
        (OUT_DIR / file_name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT_DIR / file_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
