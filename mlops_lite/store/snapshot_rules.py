"""What the dirty-tree snapshot leaves out: secret files, virtual environments, junk, large files.

A run pinned to a dirty work tree carries a snapshot of it, and the snapshot
is pushed with the run. Untracked files go in unless ``.gitignore`` says
otherwise, and a missing ``.gitignore`` line must not push a ``.env``, a
26 MB ``venv/`` or a 39 MB generated CSV to the team's remote. So:

- **secret files** (``.env``, ``*.pem``, ``*.key``, ssh ``id_*`` keys, cloud
  and tool credentials) never go in: untracked ones are left out, and a
  tracked one keeps the version in your index (its work-tree changes stay out);
- untracked files inside a **virtual environment** (a folder with
  ``pyvenv.cfg`` or ``conda-meta``) or a well-known **junk folder**
  (``.venv``, ``venv*``, ``node_modules``, ``__pycache__``,
  ``.ipynb_checkpoints``, tool caches) are left out;
- untracked files **larger** than ``max_file_size`` (default 10 MiB) are left out.

One warning names what was left out and how to keep it: ``git add`` it
(tracked files are always in the snapshot), or list it in
``pyproject.toml``::

    [tool.mlops-lite.snapshot]
    max_file_size = "50 MiB"        # or a number of bytes; 0 means no limit
    include = ["data/lookup.csv", "vendor/node_modules/"]

Secret files cannot be included. Everything is decided from the
``git status`` listing the code pin already reads, plus a stat per
untracked file: a normal tree costs what it cost before.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from mlops_lite.core.sizes import format_size, parse_size
from mlops_lite.errors import ConfigError
from mlops_lite.store.project_config import PYPROJECT, read_project_config

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "JUNK_DIRECTORIES",
    "SnapshotPlan",
    "SnapshotRules",
    "is_secret_file",
    "plan_snapshot",
]

DEFAULT_MAX_FILE_SIZE: Final = 10 * 1024 * 1024

JUNK_DIRECTORIES: Final = frozenset(
    {
        ".venv", "venv", ".virtualenv", "virtualenv", "node_modules", "__pycache__",
        ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
    }
)  # fmt: skip
_VENV_NAME = re.compile(r"\.?venv[\w.-]*")  # venv311, .venv-py3, ...
_ENVIRONMENT_MARKERS: Final = ("pyvenv.cfg", "conda-meta")

_SECRET_NAMES: Final = frozenset(
    {
        ".env", ".netrc", "_netrc", ".pgpass", ".pypirc", ".npmrc", ".git-credentials",
        ".dockercfg", "credentials", "credentials.json", "credentials.csv",
        "application_default_credentials.json", "secrets.toml", "secrets.json",
        "secrets.yaml", "secrets.yml",
    }
)  # fmt: skip
_SECRET_SUFFIXES: Final = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk")
_SECRET_DIRECTORIES: Final = frozenset({".ssh", ".aws", ".gnupg", ".docker", ".kube"})
# Dotenv files meant to be committed: templates without values.
_ENV_TEMPLATES: Final = (".example", ".sample", ".template", ".dist")

_NAMED: Final = 20  # paths a warning names; the rest are counted


def is_secret_file(path: str) -> bool:
    """Whether a work-tree path (``/``-separated) names a file that holds secrets by convention."""
    parts = path.split("/")
    name = parts[-1]
    if any(part in _SECRET_DIRECTORIES for part in parts[:-1]):
        return True
    if name in _SECRET_NAMES or name.lower().endswith(_SECRET_SUFFIXES):
        return True
    if name.startswith(".env.") and not name.endswith(_ENV_TEMPLATES):
        return True
    # ssh-keygen's private keys: id_rsa, id_ed25519, id_ecdsa_sk... (no extension;
    # the .pub beside them is public).
    return name.startswith("id_") and "." not in name


@dataclass(frozen=True)
class SnapshotRules:
    """The limits of ``[tool.mlops-lite.snapshot]``."""

    max_file_size: int = DEFAULT_MAX_FILE_SIZE  # 0: no limit
    include: tuple[str, ...] = ()

    @classmethod
    def for_project(cls, root: str) -> SnapshotRules:
        """The rules of the project at ``root`` (defaults without a ``pyproject.toml``)."""
        table = read_project_config(root).get("snapshot", {})
        where = f"{PYPROJECT}: [tool.mlops-lite.snapshot]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(table) - {"max_file_size", "include"})
        if unknown:
            raise ConfigError(
                f"{where}: unknown setting(s) {', '.join(unknown)}; known: include, max_file_size"
            )
        include = table.get("include", [])
        if not isinstance(include, list) or not all(isinstance(p, str) for p in include):
            raise ConfigError(f"{where}: include must be a list of paths or glob patterns")
        size = _parse_size(table.get("max_file_size", DEFAULT_MAX_FILE_SIZE), where)
        return cls(size, tuple(include))

    def includes(self, path: str) -> bool:
        """Whether the user asked to keep ``path`` (a file, or a folder ending in ``/``)."""
        bare = path.rstrip("/")
        for pattern in self.include:
            stripped = pattern.strip("/")
            if fnmatch.fnmatchcase(bare, stripped) or bare.startswith(stripped + "/"):
                return True
        return False


def _parse_size(value: Any, where: str) -> int:
    size = 0 if value is False else parse_size(value)
    if size is None:
        raise ConfigError(
            f"{where}: max_file_size must be a number of bytes or a size such as '10 MiB' or "
            f"'50MB' (0 for no limit), not {value!r}"
        )
    return size


@dataclass
class SnapshotPlan:
    """The pathspec excluding what stays out, and what to tell the user about it."""

    excluded: list[tuple[str, str]] = field(default_factory=list)  # (path or folder/, why)
    files_left_out: int = 0  # changed and untracked files the snapshot does not take

    @property
    def pathspecs(self) -> list[str]:
        """``git add`` pathspecs: the whole tree, minus each excluded path (literally)."""
        return [".", *(f":(exclude,literal){path.rstrip('/')}" for path, _ in self.excluded)]

    def warning(self) -> str | None:
        """The one warning naming what was left out and how to keep it; None if nothing was."""
        if not self.excluded:
            return None
        shown = [f"{path} ({why})" for path, why in self.excluded[:_NAMED]]
        if len(self.excluded) > _NAMED:
            shown.append(f"and {len(self.excluded) - _NAMED} more")
        return (
            f"mlops-lite left out of this run's code snapshot: {'; '.join(shown)}. To keep a "
            f"file, `git add` it (tracked files are always in the snapshot) or list it under "
            f"include = [...] in [tool.mlops-lite.snapshot] of {PYPROJECT} (max_file_size sets "
            "the size limit); to silence this, add it to .gitignore. Secret files are never "
            "snapshotted."
        )


def plan_snapshot(
    root: str, untracked: Iterable[str], changed: Iterable[str], rules: SnapshotRules
) -> SnapshotPlan:
    """Which of a dirty tree's untracked and changed paths stay out of the snapshot."""
    plan = SnapshotPlan()
    folders: dict[str, str | None] = {}  # folder -> why it is excluded (None: it is not)
    counted: dict[str, int] = {}
    for path in changed:
        if is_secret_file(path):
            plan.excluded.append((path, "a secret file; the version in your index is kept"))
            plan.files_left_out += 1
    for path in untracked:
        if is_secret_file(path):
            plan.excluded.append((path, "looks like a secret file"))
            plan.files_left_out += 1
            continue
        folder = _excluded_folder(root, path, folders, rules)
        if folder is not None:
            counted[folder] = counted.get(folder, 0) + 1
            continue
        if rules.max_file_size and not rules.includes(path):
            try:
                size = os.lstat(os.path.join(root, path)).st_size
            except OSError:
                continue
            if size > rules.max_file_size:
                plan.excluded.append(
                    (
                        path,
                        f"{format_size(size)}, over the {format_size(rules.max_file_size)} limit",
                    )
                )
                plan.files_left_out += 1
    for folder, count in counted.items():
        why = folders[folder]
        plan.excluded.append((f"{folder}/", f"{why}, {count} file{'s' * (count != 1)}"))
        plan.files_left_out += count
    return plan


def _excluded_folder(
    root: str, path: str, folders: dict[str, str | None], rules: SnapshotRules
) -> str | None:
    """The outermost folder of ``path`` that is a virtual environment or junk, if any."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if folder not in folders:
            folders[folder] = None if rules.includes(folder + "/") else _folder_kind(root, folder)
        if folders[folder] is not None:
            return folder
    return None


def _folder_kind(root: str, folder: str) -> str | None:
    name = folder.rsplit("/", 1)[-1]
    if name in JUNK_DIRECTORIES or _VENV_NAME.fullmatch(name):
        return "a virtual environment or generated folder"
    location = os.path.join(root, folder)
    if any(os.path.lexists(os.path.join(location, marker)) for marker in _ENVIRONMENT_MARKERS):
        return "a virtual environment"
    return None
