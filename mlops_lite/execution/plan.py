"""Which invocations are ready: the DAG bookkeeping of a run, pure and in memory."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

__all__ = ["ReadyQueue"]


class ReadyQueue:
    """Hands out invocations whose upstream steps are all recorded, in trace order.

    Trace order is a topological order (a step can only use outputs of earlier
    calls), so with one task at a time this is exactly the sequential order.
    """

    def __init__(self, upstream: Mapping[str, Iterable[str]]) -> None:
        self._order = {name: index for index, name in enumerate(upstream)}
        self._waiting = {name: set(deps) for name, deps in upstream.items()}
        self._children: dict[str, list[str]] = {name: [] for name in upstream}
        for name, deps in self._waiting.items():
            for dep in deps:
                self._children[dep].append(name)
        self._ready = [(self._order[n], n) for n, deps in self._waiting.items() if not deps]
        heapq.heapify(self._ready)

    def __bool__(self) -> bool:
        return bool(self._ready)

    def pop(self) -> str:
        """The ready invocation that comes first in trace order."""
        return heapq.heappop(self._ready)[1]

    def done(self, name: str) -> None:
        """``name`` is recorded (whatever its status): its children may be ready."""
        for child in self._children[name]:
            waiting = self._waiting[child]
            waiting.discard(name)
            if not waiting:
                heapq.heappush(self._ready, (self._order[child], child))

    def order(self, name: str) -> int:
        """The invocation's position in trace order."""
        return self._order[name]
