"""Moving `refs/mlops/*` and the objects they need to and from git remotes: git CLI or dulwich."""

from __future__ import annotations

import shutil
import time

from mlops_lite.errors import RemoteError
from mlops_lite.store.transport.classify import (
    EXIT_AUTHENTICATION,
    EXIT_REJECTED,
    EXIT_UNREACHABLE,
    rejected_error,
)
from mlops_lite.store.transport.dulwich_client import _dulwich_pull, _dulwich_push
from mlops_lite.store.transport.git_cli import _git_pull, _git_push, _run_git
from mlops_lite.store.transport.result import (
    MLOPS_PREFIX,
    REFSPEC,
    RUNS_PREFIX,
    Direction,
    Implementation,
    TransferResult,
)

__all__ = [
    "EXIT_AUTHENTICATION",
    "EXIT_REJECTED",
    "EXIT_UNREACHABLE",
    "MLOPS_PREFIX",
    "REFSPEC",
    "RUNS_PREFIX",
    "Direction",
    "Implementation",
    "TransferResult",
    "add_fetch_refspec",
    "git_available",
    "pull",
    "push",
    "rejected_error",
]


def git_available() -> bool:
    """Whether the `git` CLI is on PATH (the preferred transport)."""
    return shutil.which("git") is not None


def push(
    start_dir: str, remote: str, *, implementation: Implementation, progress: bool
) -> TransferResult:
    """Push every `refs/mlops/*` ref (and the objects it needs) to `remote`, never forcing."""
    began = time.perf_counter()
    if implementation == "git":
        result = _git_push(start_dir, remote, progress)
    else:
        result = _dulwich_push(start_dir, remote, progress)
    result.elapsed_seconds = time.perf_counter() - began
    return result


def pull(
    start_dir: str, remote: str, *, implementation: Implementation, progress: bool
) -> TransferResult:
    """Fetch every `refs/mlops/*` ref of `remote` into the same local refs, never forcing."""
    began = time.perf_counter()
    if implementation == "git":
        result = _git_pull(start_dir, remote, progress)
    else:
        result = _dulwich_pull(start_dir, remote, progress)
    result.elapsed_seconds = time.perf_counter() - began
    return result


def add_fetch_refspec(start_dir: str, remote: str) -> bool:
    """Add `REFSPEC` to `remote.<remote>.fetch`; False when it was already there."""
    from dulwich.repo import Repo

    with Repo.discover(start_dir) as repo:
        config = repo.get_config()
        section = (b"remote", remote.encode())
        if not config.has_section(section):
            raise RemoteError(
                f"no remote named {remote!r} in this repository: add it with "
                f"`git remote add {remote} <url>` first"
            )
        existing = list(config.get_multivar(section, b"fetch"))
        if any(spec.lstrip(b"+") == REFSPEC.encode() for spec in existing):
            return False
    if git_available():
        # Prefer git so its own locking and formatting of .git/config are used.
        _run_git(["config", "--add", f"remote.{remote}.fetch", REFSPEC], start_dir)
        return True
    with Repo.discover(start_dir) as repo:
        config = repo.get_config()
        config.add(section, b"fetch", REFSPEC.encode())
        config.write_to_path()
    return True
