"""Small charts as inline SVG: a histogram, and runs as points (a metric by run or parameter)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mlops_lite.ui.html import Markup, join, tag

__all__ = ["Point", "histogram", "scatter"]

_W: Final = 560
_H: Final = 240
_LEFT: Final = 64
_BOTTOM: Final = 40
_TOP: Final = 12
_RIGHT: Final = 16


@dataclass(frozen=True)
class Point:
    """One run in a chart: its position, what its tooltip says, where it links."""

    x: float
    y: float
    label: str
    href: str | None = None


def _number(value: float) -> str:
    return f"{value:.4g}"


def _scale(low: float, high: float, start: float, end: float) -> tuple[float, float, float]:
    """``(low, high, pixels per unit)``, widened when every value is the same."""
    if high == low:
        low, high = low - 0.5, high + 0.5
    return low, high, (end - start) / (high - low)


def _frame(label: str, x_label: str, y_label: str, body: list[Markup]) -> Markup:
    axes = [
        tag("line", {"x1": _LEFT, "y1": _H - _BOTTOM, "x2": _W - _RIGHT, "y2": _H - _BOTTOM}),
        tag("line", {"x1": _LEFT, "y1": _TOP, "x2": _LEFT, "y2": _H - _BOTTOM}),
        tag("text", {"x": (_LEFT + _W) / 2, "y": _H - 6, "class": "axis-label"}, x_label),
        tag(
            "text",
            {
                "x": 14,
                "y": (_H - _BOTTOM) / 2,
                "class": "axis-label",
                "transform": f"rotate(-90 14 {(_H - _BOTTOM) / 2:.0f})",
            },
            y_label,
        ),
    ]
    return tag(
        "svg",
        {
            "class": "chart",
            "role": "img",
            "aria-label": label,
            "width": _W,
            "height": _H,
            "viewBox": f"0 0 {_W} {_H}",
            "xmlns": "http://www.w3.org/2000/svg",
        },
        tag("g", {"class": "axes"}, axes),
        body,
    )


def _ticks(low: float, high: float, to_pixel: float, base: float, *, vertical: bool) -> Markup:
    """Five labelled values from ``low`` to ``high``; ``base`` is where ``low`` is drawn."""
    marks = []
    for index in range(5):
        value = low + (high - low) * index / 4
        offset = (value - low) * to_pixel
        if vertical:
            y = base - offset
            marks.append(
                tag(
                    "text", {"x": _LEFT - 6, "y": f"{y + 4:.1f}", "class": "tick-y"}, _number(value)
                )
            )
        else:
            x = base + offset
            marks.append(
                tag(
                    "text",
                    {"x": f"{x:.1f}", "y": _H - _BOTTOM + 16, "class": "tick-x"},
                    _number(value),
                )
            )
    return join(marks)


def histogram(counts: Sequence[int], edges: Sequence[float], *, label: str) -> Markup:
    """Bars of ``counts`` over the ``len(counts) + 1`` bin ``edges``."""
    if not counts:
        return Markup("")
    tallest = max(max(counts), 1)
    width = (_W - _LEFT - _RIGHT) / len(counts)
    bars = []
    for index, count in enumerate(counts):
        height = (_H - _BOTTOM - _TOP) * count / tallest
        bars.append(
            tag(
                "rect",
                {
                    "class": "bar",
                    "x": f"{_LEFT + index * width + 1:.1f}",
                    "y": f"{_H - _BOTTOM - height:.1f}",
                    "width": f"{max(width - 2, 1):.1f}",
                    "height": f"{height:.1f}",
                },
                tag(
                    "title",
                    None,
                    f"[{_number(edges[index])}, {_number(edges[index + 1])}): {count}",
                ),
            )
        )
    low, high, to_pixel = _scale(edges[0], edges[-1], _LEFT, _W - _RIGHT)
    ticks = _ticks(low, high, to_pixel, _LEFT, vertical=False)
    y_ticks = _ticks(0, tallest, (_H - _BOTTOM - _TOP) / tallest, _H - _BOTTOM, vertical=True)
    return _frame(label, "value", "count", [*bars, ticks, y_ticks])


def scatter(
    points: Sequence[Point],
    *,
    label: str,
    x_label: str,
    y_label: str,
    x_names: Sequence[str] | None = None,
    connect: bool = False,
) -> Markup:
    """Points of runs; ``x_names`` labels integer x positions (runs in order) instead of numbers."""
    if not points:
        return Markup("")
    x_low, x_high, x_pixel = _scale(
        min(p.x for p in points), max(p.x for p in points), _LEFT + 12, _W - _RIGHT - 12
    )
    y_low, y_high, y_pixel = _scale(
        min(p.y for p in points), max(p.y for p in points), _TOP + 8, _H - _BOTTOM - 8
    )

    def position(point: Point) -> tuple[float, float]:
        return (
            _LEFT + 12 + (point.x - x_low) * x_pixel,
            _H - _BOTTOM - 8 - (point.y - y_low) * y_pixel,
        )

    body: list[Markup] = []
    if connect and len(points) > 1:
        ordered = sorted(points, key=lambda p: p.x)
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(position, ordered))
        body.append(tag("polyline", {"class": "series", "points": line}))
    for point in points:
        x, y = position(point)
        dot = tag(
            "circle",
            {"class": "point", "cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": 5},
            tag("title", None, f"{point.label}: {_number(point.y)}"),
        )
        body.append(tag("a", {"href": point.href}, dot) if point.href else dot)
    if x_names is not None:
        for index, name in enumerate(x_names):
            x, _ = position(Point(index, y_low, ""))
            body.append(
                tag("text", {"x": f"{x:.1f}", "y": _H - _BOTTOM + 16, "class": "tick-x"}, name)
            )
    else:
        body.append(_ticks(x_low, x_high, x_pixel, _LEFT + 12, vertical=False))
    body.append(_ticks(y_low, y_high, y_pixel, _H - _BOTTOM - 8, vertical=True))
    return _frame(label, x_label, y_label, body)
