"""Sizes written by people: ``"10 MiB"``, ``"50MB"``, ``"8Gi"``, or a number of bytes."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["format_size", "parse_size"]

# ZenML's ResourceSettings ("8GB", "8GiB"), Kubernetes ("8Gi"), and plain English ("8 MiB").
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i?))?b?\s*", re.IGNORECASE)


def parse_size(value: Any) -> int | None:
    """``value`` in bytes, or None when it is not a size.

    A non-negative int is bytes; a string is a number with an optional unit:
    ``K``/``M``/``G``/``T``/``P`` are powers of 1000, ``Ki``/``Mi``/... (or
    ``KiB``, ``MiB``) powers of 1024; a trailing ``B`` changes nothing.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    prefix, binary = (match.group(2) or "").lower(), match.group(3)
    power = "kmgtp".index(prefix) + 1 if prefix else 0
    return int(float(match.group(1)) * (1024 if binary else 1000) ** power)


def format_size(size: float) -> str:
    """``size`` bytes for a person: ``512 bytes``, ``1.5 MiB``."""
    if size < 1024:
        return f"{int(size)} bytes"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "TiB":
            return f"{scaled:.1f} {unit}"
    raise AssertionError("unreachable")
