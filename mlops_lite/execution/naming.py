"""Run names: unique, sortable by time, or expanded from a template."""

from __future__ import annotations

import secrets
from datetime import datetime

__all__ = ["new_run_name"]


def new_run_name(template: str | None, pipeline_name: str, now: datetime) -> str:
    """``20261123-114844-123456-3f9a``, or the expansion of ``template``.

    The random suffix keeps names unique across processes and clones, so
    concurrent writers and teammates never collide.
    """
    stamp = now.strftime("%Y%m%d-%H%M%S-%f")
    suffix = secrets.token_hex(2)
    if not template:
        return f"{stamp}-{suffix}"
    return template.format(
        date=now.strftime("%Y_%m_%d"), time=now.strftime("%H_%M_%S_%f"), pipeline=pipeline_name,
        stamp=stamp, random=suffix,
    )  # fmt: skip
