"""Printing for the CLI: tables, times, durations."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_lite.client import Client

__all__ = ["format_duration", "format_time", "format_value", "open_client", "table"]


def open_client() -> Client:
    """A ``Client`` of the current project, imported only by the commands that read runs.

    The client pulls in the store and its readers; ``--version``, ``push`` or
    ``stack`` should not pay for that at start-up.
    """
    from mlops_lite.client import Client

    return Client()


def table(rows: list[list[str]], header: list[str]) -> str:
    """Rows under a header, columns padded to their widest cell, no trailing spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def format_time(timestamp: float | None) -> str:
    """A timestamp in local time, ``2026-11-23 11:48:44``."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """``12.3ms`` or ``4.56s``."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"


def format_value(value: Any, *, missing: str = "-") -> str:
    """A parameter or metric as a cell: strings as they are, anything else as JSON."""
    from mlops_lite.client import MISSING

    if value is MISSING:
        return missing
    return value if isinstance(value, str) else json.dumps(value, default=repr)
