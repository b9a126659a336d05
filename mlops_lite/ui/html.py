"""HTML built from escaped parts: text is escaped unless it is ``Markup`` made here.

Every string from a run (names, parameters, logs, metadata, previews) reaches a
page through ``tag()`` or ``escape()``, so a run named ``<script>`` shows as
text. Only this module and literal markup in the page modules make ``Markup``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Markup", "escape", "join", "tag"]

# Elements that have no closing tag.
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "col"})


class Markup(str):
    """A string that is already HTML: never escaped again."""

    __slots__ = ()


def escape(value: Any) -> Markup:
    """``value`` as HTML text; ``Markup`` passes through unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], separator: str = "") -> Markup:
    """Parts (escaped unless ``Markup``) one after another."""
    return Markup(escape(separator).join(escape(part) for part in parts))


def _attributes(attributes: Mapping[str, Any]) -> str:
    rendered = []
    for name, value in attributes.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")  # class_ -> class, data_x -> data-x
        rendered.append(f" {name}" if value is True else f' {name}="{escape(value)}"')
    return "".join(rendered)


def tag(name: str, attributes: Mapping[str, Any] | None = None, *children: Any) -> Markup:
    """``<name attributes>children</name>``; children are escaped unless ``Markup``.

    A child that is a list or tuple contributes each of its items; None is skipped.
    """
    opening = f"<{name}{_attributes(attributes or {})}>"
    if name in _VOID:
        return Markup(opening)
    body: list[Markup] = []
    for child in children:
        items = child if isinstance(child, (list, tuple)) else (child,)
        body.extend(escape(item) for item in items if item is not None)
    return Markup(f"{opening}{''.join(body)}</{name}>")
