"""Secret values this process handed out (``mlops_lite.secret``), and scrubbing them from records.

Everything a run records that code can print into — logs, metadata, error
text, the command line — passes through :func:`scrub_text` or
:func:`scrub_value` before it is written, in the process that produced it
(a pool or Dask worker scrubs with the secrets it handed out) and again in
the driver. With no secret registered, scrubbing is one check.

Values shorter than :data:`MIN_SCRUBBED_LENGTH` are not scrubbed: replacing
every ``"1"`` in a log would destroy it, and such a value is no secret.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Final

__all__ = [
    "MIN_SCRUBBED_LENGTH",
    "REDACTED",
    "contains_secret",
    "register_secret",
    "scrub_text",
    "scrub_value",
]

REDACTED: Final = "<redacted>"
MIN_SCRUBBED_LENGTH: Final = 4

_lock = threading.Lock()
_forms: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Scrub ``value`` (and the forms it takes when printed) from all that is recorded from now."""
    global _pattern
    forms = {value, value.encode("unicode_escape").decode("ascii")}
    # A multi-line secret (a PEM key) is often printed or logged a line at a time.
    forms.update(line.strip() for line in value.splitlines())
    forms = {form for form in forms if len(form) >= MIN_SCRUBBED_LENGTH}
    with _lock:
        if forms <= _forms:
            return
        _forms.update(forms)
        # Longest first, so a value is replaced whole before any line of it.
        ordered = sorted(_forms, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(form) for form in ordered))


def scrub_text(text: str) -> str:
    """``text`` with every registered secret replaced by ``<redacted>``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def scrub_value(value: Any) -> Any:
    """A recorded value (metadata) with secrets scrubbed from every string in it, keys too."""
    if _pattern is None:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes):
        # surrogateescape round-trips any bytes, so only the secrets change.
        text = value.decode("utf-8", "surrogateescape")
        return scrub_text(text).encode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return {scrub_value(key): scrub_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub_value(item) for item in value)
    return value


def contains_secret(value: Any) -> bool:
    """Whether a recorded value (a parameter) holds a registered secret anywhere."""
    if _pattern is None:
        return False
    if isinstance(value, str):
        return _pattern.search(value) is not None
    if isinstance(value, bytes):
        return contains_secret(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return any(contains_secret(key) or contains_secret(item) for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_secret(item) for item in value)
    return False
