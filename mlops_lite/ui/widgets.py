"""Pieces every page uses: a page's parts, status badges, value cells, facts, previews."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_lite.cli.output import format_duration, format_time, format_value
from mlops_lite.client import MISSING
from mlops_lite.core.columns import is_number
from mlops_lite.materializers.preview import (
    ArrayPreview,
    ImagePreview,
    Preview,
    TablePreview,
    TextPreview,
    Unavailable,
)
from mlops_lite.ui.charts import histogram
from mlops_lite.ui.html import Markup, join, tag

__all__ = [
    "Page",
    "duration",
    "facts",
    "json_block",
    "link",
    "render_preview",
    "status_badge",
    "table",
    "timestamp",
    "value_cell",
]


@dataclass(frozen=True)
class Page:
    """A page's title, body and navigation section; ``live`` pages reload when runs change.

    A page following a running run names it in ``watch`` (``pipeline/run``: its
    sha changes when it ends) and reloads at ``reload`` as its steps progress.
    """

    title: str
    body: Markup
    section: str = "runs"
    live: bool = False
    watch: str | None = None
    reload: str | None = None


def status_badge(status: str) -> Markup:
    """A coloured status label."""
    return tag("span", {"class": f"status status-{status}"}, status)


def timestamp(value: float | None) -> str:
    """A time in local time, or ``-``."""
    return format_time(value)


def duration(seconds: float | None) -> str:
    """``12.3ms`` or ``4.56s``, or ``-``."""
    return format_duration(seconds)


def link(href: str | None, text: Any, **attributes: Any) -> Markup:
    """A link, or just the text where the page does not exist (a run left out of a report)."""
    if href is None:
        return tag("span", attributes or None, text)
    return tag("a", {"href": href, **attributes}, text)


def value_cell(value: Any) -> Markup:
    """A table cell for a parameter or metric; numbers right-aligned."""
    if value is MISSING:
        return tag("td", {"class": "muted"}, "–")
    return tag("td", {"class": "num" if is_number(value) else None}, format_value(value))


def facts(rows: Sequence[tuple[str, Any]]) -> Markup:
    """A definition list of ``(label, content)``; rows whose content is None are left out."""
    return tag(
        "dl",
        {"class": "facts"},
        [join([tag("dt", None, k), tag("dd", None, v)]) for k, v in rows if v is not None],
    )


def table(headers: Sequence[str], rows: Sequence[Markup], css: str) -> Markup:
    """A table of class ``css`` with a header row and ``rows`` (``<tr>`` each)."""
    return tag(
        "table",
        {"class": css},
        tag("thead", None, tag("tr", None, [tag("th", None, h) for h in headers])),
        tag("tbody", None, list(rows)),
    )


def json_block(value: Any) -> Markup:
    """A value as indented JSON in a ``<pre>``."""
    return tag("pre", {"class": "json"}, json.dumps(value, indent=2, default=repr, sort_keys=False))


def _image(preview: ImagePreview, alt: str) -> Markup:
    source = f"data:{preview.mime};base64,{base64.b64encode(preview.data).decode()}"
    return tag("img", {"class": "preview", "src": source, "alt": alt})


def render_preview(preview: Preview, *, name: str) -> Markup:
    """A preview as HTML; every piece of text in it is escaped."""
    if isinstance(preview, Unavailable):
        return tag("p", {"class": "notice preview-unavailable"}, preview.reason)
    if isinstance(preview, ImagePreview):
        return _image(preview, name)
    if isinstance(preview, TextPreview):
        cut = (
            tag("p", {"class": "muted"}, "(cut: showing the beginning)")
            if preview.truncated
            else None
        )
        return join([tag("pre", {"class": f"preview-{preview.language}"}, preview.text), cut or ""])
    if isinstance(preview, TablePreview):
        rows, columns = preview.shape
        head = tag(
            "table",
            {"class": "preview-table"},
            tag("thead", None, tag("tr", None, [tag("th", None, c) for c in preview.columns])),
            tag(
                "tbody",
                None,
                [tag("tr", None, [tag("td", None, cell) for cell in row]) for row in preview.rows],
            ),
        )
        summary = tag(
            "table",
            {"class": "preview-summary"},
            tag(
                "thead",
                None,
                tag(
                    "tr",
                    None,
                    [tag("th", None, h) for h in ("column", "dtype", "non-null", "summary")],
                ),
            ),
            tag(
                "tbody",
                None,
                [
                    tag(
                        "tr",
                        None,
                        tag("td", None, c.name),
                        tag("td", {"class": "mono"}, c.dtype),
                        tag("td", {"class": "num"}, c.non_null),
                        tag("td", None, ", ".join(f"{k} {v}" for k, v in c.statistics.items())),
                    )
                    for c in preview.summary
                ],
            ),
        )
        return join(
            [
                tag(
                    "p", {"class": "muted"}, f"{rows:,} rows × {columns:,} columns; the first rows:"
                ),
                tag("div", {"style": "overflow:auto"}, head),
                tag("h3", None, "Columns"),
                summary,
            ]
        )
    if isinstance(preview, ArrayPreview):
        shape = " × ".join(str(n) for n in preview.shape) or "scalar"
        stats = ", ".join(f"{k} {v:.6g}" for k, v in preview.statistics.items())
        parts = [facts([("shape", shape), ("dtype", preview.dtype), ("statistics", stats or None)])]
        if preview.image is not None:
            parts.append(_image(preview.image, name))
        if preview.histogram is not None:
            counts, edges = preview.histogram
            parts.append(tag("h3", None, "Histogram of values"))
            parts.append(histogram(counts, edges, label=f"histogram of {name}"))
        parts.append(tag("pre", {"class": "preview-values"}, preview.values))
        return join(parts)
    raise AssertionError(f"unknown preview {preview!r}")
