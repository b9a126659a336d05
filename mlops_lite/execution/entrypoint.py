"""Where a run came from: the pipeline's source file and the command line, secrets redacted."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any, Final

from mlops_lite.definition.pipelines import Pipeline

__all__ = ["REDACTED", "entry_point_of", "redact_secrets"]

_SECRET_WORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "api-key",
    "api_key",
    "apikey",
    "credential",
    "auth",
)
REDACTED: Final = "<redacted>"


def entry_point_of(pipeline: Pipeline, source_root: str) -> dict[str, Any]:
    """The pipeline's module, name and file (relative to ``source_root``), for reruns.

    The source root is the project root, or the temporary tree a rerun runs in,
    so a rerun records paths as the original did.
    """
    func = pipeline.entrypoint
    try:
        source_file = inspect.getsourcefile(func)
    except TypeError:
        source_file = None
    relative = None
    if source_file and os.path.exists(source_file):
        relative = os.path.relpath(os.path.realpath(source_file), os.path.realpath(source_root))
    return {
        "module": func.__module__,
        "qualname": func.__qualname__,
        "file": relative.replace(os.sep, "/") if relative else None,
        "argv": redact_secrets(sys.argv),
        "cwd": os.path.relpath(os.getcwd(), source_root).replace(os.sep, "/"),
    }


def redact_secrets(argv: list[str]) -> list[str]:
    """The command line with values of secret-looking options replaced.

    Secrets are never written into a git object, and the command line is: a
    ``--api-key sk-...`` pushed with the run would leak to every teammate.
    """
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next and not argument.startswith("-"):
            redacted.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, equals, _ = argument.partition("=")
        secret = argument.startswith("-") and any(word in name.lower() for word in _SECRET_WORDS)
        if secret and equals:
            redacted.append(f"{name}={REDACTED}")
        else:
            redacted.append(argument)
            hide_next = secret
    return redacted
