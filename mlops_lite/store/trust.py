"""Whose pickled artifacts may be unpickled: your own, and the authors you trust.

Loading a pickle runs code. An artifact that needed cloudpickle is loaded,
or reused as a cache hit, only when the run that made it was recorded under
your own git identity, or its author is trusted through
``MLOPS_LITE_TRUST_PICKLE``: ``1`` trusts everyone, a comma-separated list of
emails trusts those people.
"""

from __future__ import annotations

import os

__all__ = ["TRUST_ENV", "pickle_trusted"]

TRUST_ENV = "MLOPS_LITE_TRUST_PICKLE"


def pickle_trusted(
    author_email: str | None, own_email: str, *, explicit: bool | None = None
) -> bool:
    """Whether loading a pickle from a run by ``author_email`` may run its code here."""
    if explicit is not None:
        return explicit
    if author_email is not None and author_email.lower() == own_email.lower():
        return True
    setting = os.environ.get(TRUST_ENV, "").strip()
    if setting.lower() in ("1", "true", "yes", "all", "*"):
        return True
    trusted = {part.strip().lower() for part in setting.split(",") if "@" in part}
    return author_email is not None and author_email.lower() in trusted
