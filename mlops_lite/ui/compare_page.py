"""Runs side by side: parameters and metrics with differences highlighted, and charts of metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from mlops_lite.client import RunTable
from mlops_lite.core.columns import Column, is_number
from mlops_lite.errors import ConfigError
from mlops_lite.ui.charts import Point, scatter
from mlops_lite.ui.html import Markup, join, tag
from mlops_lite.ui.links import Links
from mlops_lite.ui.widgets import Page, link, status_badge, value_cell

__all__ = ["MAX_CHARTS", "compare_page"]

MAX_CHARTS: Final = 8
_RUNS: Final = "runs"


def _numeric(table: RunTable, column: Column) -> bool:
    values = table.column_values(column)
    return any(is_number(v) for v in values) and all(is_number(v) or not v for v in values)


def _x_axis(table: RunTable, requested: str | None) -> Column | None:
    """What charts plot metrics against: a numeric parameter that varies, else the runs."""
    if requested == _RUNS:
        return None
    if requested:
        try:
            return Column.parse(requested)
        except ConfigError:
            return None
    varying = [c for c in table.differing_columns() if c.kind == "param" and _numeric(table, c)]
    return varying[0] if varying else None


def _charts(table: RunTable, x: Column | None, links: Links) -> list[Markup]:
    names = [run.name[-12:] for run in table.runs]
    charts = []
    metrics = [c for c in table.columns if c.kind == "metric" and c != x and _numeric(table, c)]
    varying = [c for c in metrics if table.differs(c)] or metrics
    for metric in varying[:MAX_CHARTS]:
        points = []
        for row, run in enumerate(table.runs):
            y = table.value(row, metric)
            x_value = row if x is None else table.value(row, x)
            if is_number(y) and is_number(x_value):
                points.append(Point(float(x_value), float(y), run.name, links.run(run.sha)))
        if not points:
            continue
        charts.append(
            tag(
                "figure",
                {"class": "card chart-card", "data-metric": metric.name},
                tag("figcaption", None, metric.name + (f" over {x.name}" if x else " by run")),
                scatter(
                    points,
                    label=f"{metric.name} by {x.name if x else 'run'}",
                    x_label=x.name if x else "run",
                    y_label=metric.key,
                    x_names=names if x is None else None,
                    connect=x is not None,
                ),
            )
        )
    return charts


def compare_page(
    table: RunTable,
    links: Links,
    query: Mapping[str, Sequence[str]] | None = None,
) -> Page:
    """The comparison of ``table``'s runs; ``query`` may ask for only differences and an x axis."""
    query = query or {}
    only_differences = (query.get("diff") or [""])[-1] == "1"
    x = _x_axis(table, (query.get("x") or [""])[-1] or None)
    columns = table.differing_columns() if only_differences else table.columns
    header = tag(
        "tr",
        None,
        tag("th", None, "run"),
        [
            tag(
                "th",
                None,
                link(links.run(run.sha), run.name),
                tag("div", {"class": "muted mono"}, run.sha[:10]),
                status_badge(run.status),
                None
                if run.readable
                else tag("div", {"class": "error unreadable-reason"}, run.error or "unknown"),
            )
            for run in table.runs
        ],
    )
    rows = [
        tag(
            "tr",
            {"class": "differs" if table.differs(column) else None, "data-column": column.name},
            tag("th", None, column.name),
            [value_cell(value) for value in table.column_values(column)],
        )
        for column in columns
    ]
    shas = [run.sha for run in table.runs]
    toggles = []
    action = links.compare([])
    if links.live and action is not None:
        toggles.append(
            link(links.compare(shas), "show every column")
            if only_differences
            else link(links.compare(shas, {"diff": "1"}), "show only differences")
        )
        params = [c for c in table.columns if c.kind == "param" and _numeric(table, c)]
        choices = [tag("option", {"value": _RUNS, "selected": x is None}, "run")] + [
            tag("option", {"value": c.name, "selected": c == x}, c.name) for c in params
        ]
        toggles.append(
            tag(
                "form",
                {
                    "method": "get",
                    "action": action.partition("?")[0],
                    "class": "filters",
                },
                [tag("input", {"type": "hidden", "name": "run", "value": sha}) for sha in shas],
                tag("label", None, "Plot metrics over", tag("select", {"name": "x"}, choices)),
                tag("button", {"type": "submit"}, "Plot"),
            )
        )
    charts = _charts(table, x, links)
    body = join(
        [
            tag("h1", None, f"Comparing {len(table.runs)} runs"),
            tag(
                "p",
                {"class": "muted"},
                f"{len(table.differing_columns())} of {len(table.columns)} "
                "parameters and metrics differ (highlighted).",
            ),
            join(toggles, " "),
            tag(
                "div",
                {"style": "overflow:auto"},
                tag(
                    "table",
                    {"class": "compare"},
                    tag("thead", None, header),
                    tag("tbody", None, rows),
                ),
            )
            if table.runs
            else tag("p", {"class": "notice"}, "Pick runs to compare on the runs page."),
            tag("h2", None, "Charts") if charts else "",
            tag("div", {"class": "grid"}, charts),
        ]
    )
    return Page("Compare runs", body)
