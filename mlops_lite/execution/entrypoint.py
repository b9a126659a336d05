"""Where a run came from: the pipeline's source file and the command line, secrets redacted."""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any, Final

from mlops_lite.core.secrets import REDACTED, scrub_text
from mlops_lite.definition.pipelines import Pipeline

__all__ = ["REDACTED", "entry_point_of", "redact_secrets"]


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


# Option and variable names that hold secrets: "pass" covers password, passwd and
# passphrase, "key" api-key, secret-key and private-key, "auth" authorization.
_SECRET_WORDS: Final = ("pass", "pwd", "secret", "token", "key", "credential", "auth", "cookie")
# Short options that take a password in common tools (mysql -p, curl -u user:pass...).
_SECRET_SHORT_OPTIONS: Final = ("-p",)
# scheme://user:password@host: only the password is hidden.
_URL_PASSWORD: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s]+(?=@)")
# An HTTP header (-H 'Authorization: Bearer ...') whose name says it holds a secret.
_HEADER: Final = re.compile(r"^(\s*[A-Za-z0-9_-]+\s*:\s*)(\S.*)$", re.DOTALL)
# A credential scheme followed by its token, wherever it appears.
_SCHEME_TOKEN: Final = re.compile(r"\b(Bearer|Basic|Token|Digest)(\s+)\S+", re.IGNORECASE)


def _secret_name(name: str) -> bool:
    normalized = name.lstrip("-").lower().replace("_", "-")
    return bool(normalized) and any(word in normalized for word in _SECRET_WORDS)


def redact_secrets(argv: list[str]) -> list[str]:
    """The command line with secret values replaced by ``<redacted>``.

    Secrets are never written into a git object, and the command line is: a
    ``--api-key sk-...`` pushed with the run would leak to every teammate.
    Hidden: the value after (or ``=``-joined to) an option whose name says it
    is secret, even when the value starts with ``-``; ``-p`` values
    (``-p VALUE``, ``-pVALUE``); ``NAME=value`` arguments with such a name;
    passwords in URLs (``scheme://user:<redacted>@host``); secret HTTP headers
    and ``Bearer``/``Basic`` tokens; and every value ``mlops_lite.secret()``
    returned. A harmless value after a flag that merely looks secret
    (``--no-auth -v``) is hidden too: better a lost flag than a leaked secret.
    """
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
            continue
        redacted.append(_redact_argument(argument))
        option = argument.startswith("-") and "=" not in argument
        hide_next = option and (_secret_name(argument) or argument in _SECRET_SHORT_OPTIONS)
    return redacted


def _redact_argument(argument: str) -> str:
    name, equals, _ = argument.partition("=")
    if equals and _secret_name(name) and not name.lstrip("-").startswith(("/", ".")):
        return f"{name}={REDACTED}"
    for short in _SECRET_SHORT_OPTIONS:
        if argument.startswith(short) and len(argument) > len(short) and argument[1] != "-":
            return f"{short}{REDACTED}"
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}", argument)
    header = _HEADER.match(text)
    if header is not None and _secret_name(header.group(1).strip().rstrip(":")):
        text = header.group(1) + REDACTED
    text = _SCHEME_TOKEN.sub(rf"\1\2{REDACTED}", text)
    return scrub_text(text)
