"""Walks over small graphs given as adjacency maps (roots and the archives they hold)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

__all__ = ["inverted", "reachable"]

T = TypeVar("T", bound=Hashable)


def reachable(starts: Iterable[T], edges: Mapping[T, Iterable[T]]) -> set[T]:
    """``starts`` and every node ``edges`` lead to from them (cycles are walked once)."""
    reached = set(starts)
    pending = list(reached)
    while pending:
        for node in edges.get(pending.pop(), ()):
            if node not in reached:
                reached.add(node)
                pending.append(node)
    return reached


def inverted(edges: Mapping[T, Iterable[T]]) -> dict[T, list[T]]:
    """The edges turned round: ``{child: its parents}`` from ``{parent: its children}``."""
    parents: dict[T, list[T]] = {}
    for parent, children in edges.items():
        for child in children:
            parents.setdefault(child, []).append(parent)
    return parents
