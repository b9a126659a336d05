"""``mlops_lite.secret()``: a credential from the environment, an untracked ``.env`` or the keyring.

Whatever it returns is registered for scrubbing (``core.secrets``): the value
never reaches a recorded log, metadata value, error text or command line,
in this process or in the worker that called it. The dirty-tree snapshot
never takes ``.env`` either (``store.snapshot_rules``).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Final

from mlops_lite.core.secrets import register_secret
from mlops_lite.errors import ConfigError, ProjectNotFoundError, SecretNotFoundError, StoreError
from mlops_lite.store.git import run_git
from mlops_lite.store.repository import find_project_root

__all__ = ["ENV_FILE", "KEYRING_SERVICE", "parse_env_file", "secret"]

ENV_FILE: Final = ".env"
KEYRING_SERVICE: Final = "mlops-lite"

# path -> ((mtime_ns, size), values): a step calling secret() in a loop reads the file once.
_env_files: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}
_lock = threading.Lock()


def secret(name: str, *, keyring_service: str = KEYRING_SERVICE) -> str:
    """The secret ``name``: from the environment, else ``.env``, else the OS keyring.

    - the environment variable ``name`` (an empty value counts as unset);
    - a ``NAME=value`` line of ``.env`` at the project root, which must not be
      tracked by git (a tracked secret is already in the history);
    - ``keyring.get_password(keyring_service, name)`` when the ``keyring``
      package is installed (``pip install keyring``; imported only then).

    The value is scrubbed from everything mlops_lite records from then on.
    Raises ``SecretNotFoundError`` saying where it looked and how to set it.
    """
    looked: list[str] = []
    value = os.environ.get(name) or None
    looked.append(f"the environment variable {name}")
    if value is None:
        value = _from_env_file(name, looked)
    if value is None:
        value = _from_keyring(name, keyring_service, looked)
    if value is None:
        raise SecretNotFoundError(
            f"secret {name!r} is not set; looked in {', '.join(looked)}. Set it with "
            f"`export {name}=...`, a line `{name}=...` in an untracked {ENV_FILE} at the "
            f"project root (list {ENV_FILE} in .gitignore), or `keyring set {keyring_service} "
            f"{name}` (with the keyring package installed)"
        )
    register_secret(value)
    return value


def _from_env_file(name: str, looked: list[str]) -> str | None:
    try:
        root = find_project_root()
    except ProjectNotFoundError:
        looked.append(f"{ENV_FILE} (not inside a git repository)")
        return None
    path = os.path.join(root, ENV_FILE)
    try:
        stat = os.stat(path)
    except OSError:
        looked.append(f"{path} (absent)")
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _env_files.get(path)
    if cached is None or cached[0] != stamp:
        _refuse_if_tracked(root, path)
        with open(path, encoding="utf-8", errors="replace") as source:
            cached = (stamp, parse_env_file(source.read()))
        with _lock:
            _env_files[path] = cached
    looked.append(path)
    return cached[1].get(name) or None


def _refuse_if_tracked(root: str, path: str) -> None:
    try:
        run_git(root, "ls-files", "--error-unmatch", "--", ENV_FILE)
    except StoreError:
        return  # untracked: as it should be
    raise ConfigError(
        f"{path} is tracked by git, so the secrets in it are in the repository's history and "
        f"travel with every push; mlops_lite.secret() refuses to read it. Move the secrets "
        f"out, then `git rm --cached {ENV_FILE}` and add {ENV_FILE} to .gitignore (and rotate "
        "any secret already pushed)"
    )


_ASSIGNMENT = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_env_file(text: str) -> dict[str, str]:
    r"""``NAME=value`` pairs of a dotenv file, as python-dotenv and docker compose read them.

    ``export`` prefixes, ``#`` comments, single quotes (literal), double quotes
    (with ``\n``-style escapes, spanning lines) and unquoted values (ending at
    `` #``) are understood; other lines are skipped.
    """
    values: dict[str, str] = {}
    position = 0
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        match = _ASSIGNMENT.match(text, position, end)
        if match is None:
            position = end + 1
            continue
        start = match.end()
        quote = text[start : start + 1]
        if quote in ("'", '"'):
            value, position = _quoted(text, start + 1, quote)
        else:
            raw = text[start:end]
            comment = re.search(r"\s#", raw)
            value = (raw[: comment.start()] if comment else raw).strip()
            position = end + 1
        values[match.group(1)] = value
    return values


def _quoted(text: str, start: int, quote: str) -> tuple[str, int]:
    """A quoted value starting after its opening quote; the value and where the next line starts."""
    chars: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if char == quote:
            after = text.find("\n", index)
            return "".join(chars), len(text) if after < 0 else after + 1
        if char == "\\" and quote == '"' and index + 1 < len(text):
            following = text[index + 1]
            chars.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        chars.append(char)
        index += 1
    return "".join(chars), len(text)  # unterminated: the rest of the file


def _from_keyring(name: str, service: str, looked: list[str]) -> str | None:
    try:
        import keyring
        import keyring.errors
    except ImportError:
        looked.append("the OS keyring (the keyring package is not installed)")
        return None
    looked.append(f"the OS keyring (service {service!r})")
    try:
        value = keyring.get_password(service, name)
    except keyring.errors.KeyringError:
        return None
    return value or None
