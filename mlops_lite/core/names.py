"""Which names may become part of a git ref: pipeline, run, output and stack names.

A name is one component of ``refs/mlops/runs/<pipeline>/<run>`` (or of a tree
entry), so it must be a valid, unambiguous git ref component everywhere: no
``/``, no ``..``, no ``.lock`` suffix, no leading ``.`` or ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "NAME_RULE",
    "NAME_WITHOUT_DOTS_PATTERN",
    "did_you_mean",
    "is_valid_name",
]

MAX_NAME_LENGTH: Final = 200

# The characters and length of a name, as regular expression sources, so that a
# whole ref can be checked in one match (``layout.parse_run_ref``); a name with
# dots must also pass the ``..`` and ``.lock`` checks of ``is_valid_name``.
NAME_PATTERN: Final = rf"[A-Za-z0-9_][A-Za-z0-9_.\-]{{0,{MAX_NAME_LENGTH - 1}}}"
NAME_WITHOUT_DOTS_PATTERN: Final = rf"[A-Za-z0-9_][A-Za-z0-9_\-]{{0,{MAX_NAME_LENGTH - 1}}}"
_NAME = re.compile(NAME_PATTERN)
_NAME_WITHOUT_DOTS = re.compile(NAME_WITHOUT_DOTS_PATTERN)

NAME_RULE: Final = "letters, digits, '_', '-' and '.' (not first, no '..', not ending in '.lock')"


def is_valid_name(name: object, *, dots: bool = True) -> bool:
    """Whether ``name`` can be one component of a ref (``dots=False``: no '.' at all)."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        return False
    pattern = _NAME if dots else _NAME_WITHOUT_DOTS
    return pattern.fullmatch(name) is not None and ".." not in name and not name.endswith(".lock")


def did_you_mean(wrong: str, names: Iterable[str]) -> str:
    """``"did you mean 'train'? "`` when one of ``names`` is close to ``wrong``, else ``""``."""
    import difflib  # only on the way to an error: not at import time

    close = difflib.get_close_matches(wrong, list(names), n=1)
    return f"did you mean {close[0]!r}? " if close else ""
