"""Bounding decoded documents (configuration files) before anything walks them recursively.

A YAML file can make one list appear a billion times through aliases (a
"billion laughs"), or contain itself; any format can nest thousands of
levels deep. Walking such a value recursively exhausts memory, time or the
stack, so it is measured first, iteratively, counting every appearance of a
shared value, and the walk stops as soon as a limit is passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "shape_problem"]

MAX_DEPTH: Final = 64
MAX_ITEMS: Final = 100_000


def shape_problem(
    value: Any, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS
) -> str | None:
    """Why ``value`` is too deep or too large to walk (None when it is fine).

    Counts values as a recursive walk would meet them (a list aliased twice
    counts twice), so the cost of this check is bounded by ``max_items``.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while pending:
        item, depth = pending.pop()
        seen += 1
        if seen > max_items:
            return f"it holds more than {max_items} values (aliases repeated over and over?)"
        if depth > max_depth:
            return f"it is nested more than {max_depth} levels deep"
        if isinstance(item, (Mapping, list, tuple, set, frozenset)) and (
            len(item) > max_items - seen
        ):
            return f"it holds more than {max_items} values"
        if isinstance(item, Mapping):
            pending.extend((key, depth + 1) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend((child, depth + 1) for child in item)
    return None
