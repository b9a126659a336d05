"""The runs page: newest first, filtered, paged from the index, with parameters and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from mlops_lite.client import Client, Run, RunTable
from mlops_lite.core.columns import Column
from mlops_lite.core.status import RUN_STATUSES
from mlops_lite.errors import ConfigError
from mlops_lite.ui.html import Markup, join, tag
from mlops_lite.ui.links import Links
from mlops_lite.ui.widgets import Page, duration, link, status_badge, timestamp, value_cell

__all__ = ["PAGE_SIZE", "RunsQuery", "runs_page", "runs_table"]

PAGE_SIZE: Final = 50
_DEFAULT_COLUMNS: Final = 6


@dataclass
class RunsQuery:
    """What the runs page was asked for (its query string, read)."""

    pipeline: str | None = None
    status: str | None = None
    author: str | None = None
    text: str | None = None
    sort: Column | None = None
    ascending: bool = False
    page: int = 1
    columns: list[Column] | None = None  # None: chosen for you
    error: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, Sequence[str]]) -> RunsQuery:
        """Read a query string (``parse_qs`` output); a bad value becomes ``error``, not a crash."""

        def one(name: str) -> str | None:
            values = query.get(name) or [""]
            return values[-1].strip() or None

        result = cls(one("pipeline"), one("status"), one("author"), one("q"))
        try:
            result.sort = Column.parse(one("sort") or "") if one("sort") else None
            if "columns" in query or "col" in query:
                result.columns = [Column.parse(text) for text in query.get("col", []) if text]
        except ConfigError as error:
            result.error = str(error)
        result.ascending = one("order") == "asc"
        try:
            result.page = max(1, int(one("page") or 1))
        except ValueError:
            result.page = 1
        return result

    def to_query(self, **changes: object) -> dict[str, str | list[str]]:
        """The query string of this view, with ``changes`` applied (for links and the pager)."""
        values: dict[str, object] = {
            "pipeline": self.pipeline,
            "status": self.status,
            "author": self.author,
            "q": self.text,
            "sort": self.sort.name if self.sort else None,
            "order": "asc" if self.ascending else None,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        query: dict[str, str | list[str]] = {k: str(v) for k, v in values.items() if v}
        if self.columns is not None:
            query["columns"] = "1"
            query["col"] = [column.name for column in self.columns]
        return query


def _default_columns(client: Client, pipeline: str | None) -> list[Column]:
    """A few parameters and run-level metrics recent runs have, for a first look."""
    available = client.columns(pipeline=pipeline)
    params = [c for c in available if c.kind == "param"][: _DEFAULT_COLUMNS // 2]
    metrics = [c for c in available if c.kind == "metric" and "." not in c.key]
    return params + metrics[: _DEFAULT_COLUMNS - len(params)]


def runs_table(runs: Sequence[Run], values: RunTable, links: Links, *, selectable: bool) -> Markup:
    """The table of runs, with a checkbox per run to compare them."""
    header = [
        tag("th", None, "") if selectable else None,
        *(tag("th", None, h) for h in ("Run", "Pipeline", "Status", "Started", "Duration", "By")),
        *(tag("th", {"class": "column"}, column.name) for column in values.columns),
    ]
    rows = []
    for row, run in enumerate(runs):
        check = tag(
            "td",
            None,
            tag(
                "input",
                {"type": "checkbox", "name": "run", "value": run.sha, "aria-label": run.name},
            ),
        )
        rows.append(
            tag(
                "tr",
                {"data-sha": run.sha},
                check if selectable else None,
                tag(
                    "td",
                    None,
                    link(links.run(run.sha), run.name, class_="run-link"),
                    tag("div", {"class": "muted mono"}, run.sha[:10]),
                ),
                tag("td", None, run.pipeline_name),
                tag("td", None, status_badge(run.status)),
                tag("td", {"class": "when"}, timestamp(run.start_time)),
                tag("td", {"class": "num"}, duration(run.duration)),
                tag(
                    "td",
                    None,
                    run.author_email or "?",
                    tag("div", {"class": "muted"}, run.host or ""),
                ),
                [value_cell(values.value(row, column)) for column in values.columns],
            )
        )
    return tag(
        "table",
        {"class": "runs"},
        tag("thead", None, tag("tr", None, header)),
        tag("tbody", None, rows),
    )


def _filters(client: Client, query: RunsQuery, chosen: list[Column], links: Links) -> Markup:
    pipelines = [p.name for p in client.list_pipelines()]
    available = client.columns(pipeline=query.pipeline)
    for column in chosen:
        if column not in available:
            available.append(column)

    def select(name: str, label: str, options: Sequence[str], current: str | None) -> Markup:
        choices = [tag("option", {"value": ""}, "any")] + [
            tag("option", {"value": o, "selected": o == current}, o) for o in options
        ]
        return tag("label", None, label, tag("select", {"name": name}, choices))

    numeric_sorts = [c.name for c in available]
    chooser = tag(
        "details",
        {"class": "columns"},
        tag("summary", None, f"Columns ({len(chosen)})"),
        tag(
            "div",
            None,
            tag("input", {"type": "hidden", "name": "columns", "value": "1"}),
            [
                tag(
                    "label",
                    None,
                    tag(
                        "input",
                        {
                            "type": "checkbox",
                            "name": "col",
                            "value": c.name,
                            "checked": c in chosen,
                        },
                    ),
                    c.name,
                )
                for c in available
            ]
            or tag("span", {"class": "muted"}, "no parameters or metrics recorded yet"),
        ),
    )
    return tag(
        "form",
        {"class": "filters", "method": "get", "action": links.runs()},
        select("pipeline", "Pipeline", pipelines, query.pipeline),
        select("status", "Status", [*RUN_STATUSES, "unreadable"], query.status),
        tag(
            "label",
            None,
            "Author",
            tag("input", {"name": "author", "value": query.author or "", "placeholder": "e-mail"}),
        ),
        tag(
            "label",
            None,
            "Search",
            tag(
                "input",
                {
                    "name": "q",
                    "value": query.text or "",
                    "placeholder": "name, host, sha…",
                    "type": "search",
                },
            ),
        ),
        select("sort", "Sort by", numeric_sorts, query.sort.name if query.sort else None),
        tag(
            "label",
            None,
            "Order",
            tag(
                "select",
                {"name": "order"},
                tag("option", {"value": "desc", "selected": not query.ascending}, "highest first"),
                tag("option", {"value": "asc", "selected": query.ascending}, "lowest first"),
            ),
        ),
        chooser,
        tag("button", {"type": "submit"}, "Apply"),
    )


def runs_page(client: Client, links: Links, query: RunsQuery) -> Page:
    """Runs newest first (or sorted by a column), one page of ``PAGE_SIZE``, from the index."""
    chosen = (
        query.columns if query.columns is not None else _default_columns(client, query.pipeline)
    )
    page = client.find_runs(
        pipeline=query.pipeline,
        status=query.status,
        author=query.author,
        text=query.text,
        order_by=query.sort,
        ascending=query.ascending,
        offset=(query.page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    values = client.run_table(page.runs, chosen)
    first = page.offset + 1 if page.runs else 0
    pager = tag(
        "div",
        {"class": "pager"},
        tag(
            "span",
            {"class": "count"},
            f"runs {first:,}–{page.offset + len(page.runs):,} of {page.total:,}",
        ),
        link(links.runs(query.to_query(page=query.page - 1)), "← newer")
        if query.page > 1
        else None,
        link(links.runs(query.to_query(page=query.page + 1)), "older →") if page.has_next else None,
    )
    compare_href = links.compare([])
    table = runs_table(page.runs, values, links, selectable=compare_href is not None)
    if compare_href is not None:
        table = tag(
            "form",
            {"method": "get", "action": compare_href.partition("?")[0], "id": "compare-form"},
            tag("button", {"type": "submit"}, "Compare selected runs"),
            table,
        )
    empty = None
    if not page.runs:
        empty = tag(
            "p",
            {"class": "notice"},
            "No run matches these filters."
            if query.pipeline or query.status or query.author or query.text
            else "No runs recorded yet: call a @pipeline function, or `mlops-lite pull` "
            "a teammate's.",
        )
    body = join(
        [
            tag("h1", None, "Runs"),
            tag("p", {"class": "error"}, query.error) if query.error else "",
            _filters(client, query, chosen, links),
            pager,
            empty or table,
            pager if len(page.runs) > 20 else "",
        ]
    )
    return Page("Runs", body, "runs", live=True)
