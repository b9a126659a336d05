"""A directed graph drawn as inline SVG, left to right: a run's steps, an artifact's lineage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mlops_lite.ui.html import Markup, join, tag

__all__ = ["Node", "draw_graph"]

_WIDTH: Final = 168
_HEIGHT: Final = 44
_GAP_X: Final = 56
_GAP_Y: Final = 18
_MARGIN: Final = 8


@dataclass(frozen=True)
class Node:
    """A box in the graph: ``state`` picks its colour (a step or run status, or a kind)."""

    id: str
    label: str
    detail: str = ""
    state: str = ""
    href: str | None = None
    title: str = ""


def _layers(nodes: Sequence[Node], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Nodes by depth (longest path from a source), each layer ordered to limit crossings."""
    known = {node.id for node in nodes}
    parents: dict[str, list[str]] = {node.id: [] for node in nodes}
    for source, target in edges:
        if source in known and target in known and source != target:
            parents[target].append(source)
    depth: dict[str, int] = {}

    def depth_of(node: str, visiting: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            # A cycle (never in a recorded run) is cut where it closes.
            ahead = [p for p in parents[node] if p not in visiting]
            depth[node] = 1 + max((depth_of(p, visiting | {node}) for p in ahead), default=-1)
        return depth[node]

    layers: list[list[str]] = []
    for node in nodes:
        level = depth_of(node.id)
        while len(layers) <= level:
            layers.append([])
        layers[level].append(node.id)
    recorded = {node.id: index for index, node in enumerate(nodes)}
    position: dict[str, float] = {}
    for layer in layers:
        # Barycentre of the parents' positions; the recorded order breaks ties.
        layer.sort(
            key=lambda n: (
                sum(position.get(p, 0) for p in parents[n]) / max(len(parents[n]), 1),
                recorded[n],
            )
        )
        position.update({node: index for index, node in enumerate(layer)})
    return layers


def draw_graph(nodes: Sequence[Node], edges: Sequence[tuple[str, str]], *, label: str) -> Markup:
    """``nodes`` joined by ``edges`` (source id, target id) as an ``<svg>`` with links."""
    if not nodes:
        return Markup("")
    layers = _layers(nodes, edges)
    tallest = max(len(layer) for layer in layers)
    width = _MARGIN * 2 + len(layers) * _WIDTH + (len(layers) - 1) * _GAP_X
    height = _MARGIN * 2 + tallest * _HEIGHT + (tallest - 1) * _GAP_Y
    place: dict[str, tuple[float, float]] = {}
    for column, layer in enumerate(layers):
        offset = (tallest - len(layer)) * (_HEIGHT + _GAP_Y) / 2
        for row, node_id in enumerate(layer):
            x = _MARGIN + column * (_WIDTH + _GAP_X)
            place[node_id] = (x, _MARGIN + offset + row * (_HEIGHT + _GAP_Y))
    paths = []
    for source, target in edges:
        if source not in place or target not in place or source == target:
            continue
        (x1, y1), (x2, y2) = place[source], place[target]
        start, end = (x1 + _WIDTH, y1 + _HEIGHT / 2), (x2, y2 + _HEIGHT / 2)
        middle = (start[0] + end[0]) / 2
        paths.append(
            tag(
                "path",
                {
                    "class": "edge",
                    "d": f"M{start[0]:.0f},{start[1]:.0f} C{middle:.0f},{start[1]:.0f} "
                    f"{middle:.0f},{end[1]:.0f} {end[0] - 4:.0f},{end[1]:.0f}",
                    "marker-end": "url(#arrow)",
                },
            )
        )
    boxes = [_box(node, *place[node.id]) for node in nodes]
    arrow = Markup(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"/></marker></defs>'
    )
    return tag(
        "svg",
        {
            "class": "dag",
            "role": "img",
            "aria-label": label,
            "width": width,
            "height": height,
            "viewBox": f"0 0 {width} {height}",
            "xmlns": "http://www.w3.org/2000/svg",
        },
        arrow,
        join(paths),
        join(boxes),
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _box(node: Node, x: float, y: float) -> Markup:
    body = join(
        [
            tag("title", None, node.title or f"{node.label} {node.detail}".strip()),
            tag(
                "rect",
                {
                    "x": f"{x:.0f}",
                    "y": f"{y:.0f}",
                    "width": _WIDTH,
                    "height": _HEIGHT,
                    "rx": 6,
                    "class": f"node state-{node.state or 'none'}",
                },
            ),
            tag(
                "text",
                {"x": f"{x + 10:.0f}", "y": f"{y + 18:.0f}", "class": "node-label"},
                _clip(node.label, 22),
            ),
            tag(
                "text",
                {"x": f"{x + 10:.0f}", "y": f"{y + 34:.0f}", "class": "node-detail"},
                _clip(node.detail, 26),
            ),
        ]
    )
    group = tag("g", {"class": "node-group", "data-node": node.id}, body)
    return tag("a", {"href": node.href}, group) if node.href else group
