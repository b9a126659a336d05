"""A payload as the buffers it is made of: a large output stored without being copied.

A materializer may return its payload in pieces (``Payload``) instead of one
``bytes``: the numpy materializer returns the .npy header and a read-only view
of the array's own memory. Chunking, hashing and pack writing then read the
array where it lies, so recording an N-byte array needs ~N bytes of memory, not
2N (a join would copy it). Only a span that crosses two pieces is copied, and a
span is at most one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from mlops_lite.core.sizes import format_size
from mlops_lite.errors import OutputTooLargeError

__all__ = ["Payload", "as_payload", "output_too_large"]

Buffer = bytes | bytearray | memoryview


class Payload:
    """A read-only byte sequence held as its pieces, in order; never joined unless asked."""

    __slots__ = ("_ends", "parts", "size")

    def __init__(self, parts: Iterable[Buffer]) -> None:
        views = [memoryview(part).cast("B").toreadonly() for part in parts]
        self.parts: tuple[memoryview, ...] = tuple(view for view in views if len(view))
        ends = []
        total = 0
        for view in self.parts:
            total += len(view)
            ends.append(total)
        self._ends = ends
        self.size = total

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to or from a worker process as one bytes (a memoryview cannot be pickled).
        return (Payload, ([bytes(self)],))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Payload):
            return self.size == other.size and bytes(self) == bytes(other)
        if isinstance(other, (bytes, bytearray, memoryview)):
            return self.size == len(other) and bytes(self) == bytes(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Payload of {self.size} bytes in {len(self.parts)} pieces>"

    def contiguous(self) -> bytes | bytearray | memoryview:
        """The payload as one buffer: a piece's view when it is one piece, else a writable copy.

        What a materializer's ``load`` receives: a read-only view is copied once
        by loaders that need to write, a joined bytearray can be used in place.
        """
        if len(self.parts) == 1:
            return self.parts[0]
        if not self.parts:
            return b""
        joined = bytearray(self.size)
        position = 0
        for part in self.parts:
            joined[position : position + len(part)] = part
            position += len(part)
        return joined

    def span(self, start: int, end: int) -> bytes | memoryview:
        """Bytes ``start:end``: a view when they lie in one piece, else a copy of that span."""
        pieces = list(self._pieces(start, end))
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    def find(self, marker: bytes, start: int, end: int) -> int:
        """The first offset of ``marker`` wholly within ``start:end``, or -1 (as ``bytes.find``)."""
        end = min(end, self.size)
        if end - start < len(marker):
            return -1
        index = self._piece_at(start)
        base = self._ends[index] - len(self.parts[index])
        if end <= self._ends[index]:
            # Within one piece: searched in place (re reads any buffer; bytes.find does not).
            found = _search(marker, self.parts[index], start - base, end - base)
            return found + base if found >= 0 else -1
        # Across pieces (the first chunk of a .npy: its header and the array): one span copied.
        found = bytes(self.span(start, end)).find(marker)
        return found + start if found >= 0 else -1

    def _piece_at(self, offset: int) -> int:
        for index, end in enumerate(self._ends):
            if offset < end:
                return index
        return len(self.parts) - 1

    def _pieces(self, start: int, end: int) -> Iterator[memoryview]:
        base = 0
        for part in self.parts:
            top = base + len(part)
            if top > start and base < end:
                yield part[max(start, base) - base : min(end, top) - base]
            base = top
            if base >= end:
                break
        if start >= end:
            yield memoryview(b"")


_patterns: dict[bytes, re.Pattern[bytes]] = {}


def _search(marker: bytes, view: memoryview, start: int, end: int) -> int:
    pattern = _patterns.get(marker)
    if pattern is None:
        pattern = _patterns[marker] = re.compile(re.escape(marker))
    found = pattern.search(view, start, end)
    return found.start() if found is not None else -1


def as_payload(data: Payload | Buffer) -> Payload:
    """``data`` as a ``Payload`` (a bytes-like value becomes its one piece, not copied)."""
    return data if isinstance(data, Payload) else Payload([data])


def output_too_large(step: str, output: str, size: int | None, doing: str) -> OutputTooLargeError:
    """The error for a ``MemoryError`` raised while an output was saved or recorded.

    Says which output, how large, and what helps: the value alone may fit where
    the value and its saved form together do not.
    """
    how_large = f"{format_size(size)}" if size is not None else "of a size it could not tell"
    return OutputTooLargeError(
        f"step {step!r}, output {output!r}: out of memory while {doing} ({how_large}); "
        "the step is recorded as failed and the steps before it are kept. Return a smaller "
        "output (split it into several outputs), return it as a numpy array (recorded from "
        "the array's own memory, without a copy; other values need about twice their size "
        "while they are saved), or run the step with more memory"
    )
