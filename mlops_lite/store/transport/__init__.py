"""Moving `refs/mlops/*` and the objects they need to and from git remotes: git CLI or dulwich."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from mlops_lite.errors import RemoteError
from mlops_lite.store.git import git_available, run_git
from mlops_lite.store.layout import REFSPEC
from mlops_lite.store.transport.classify import (
    EXIT_AUTHENTICATION,
    EXIT_REJECTED,
    EXIT_UNREACHABLE,
    rejected_error,
)
from mlops_lite.store.transport.exchange import pull_refs, push_refs
from mlops_lite.store.transport.git_cli import git_fetch, git_listing, git_push
from mlops_lite.store.transport.result import (
    Direction,
    FetchReport,
    Implementation,
    TransferResult,
)

__all__ = [
    "EXIT_AUTHENTICATION",
    "EXIT_REJECTED",
    "EXIT_UNREACHABLE",
    "Direction",
    "Implementation",
    "TransferResult",
    "add_fetch_refspec",
    "fetch_objects",
    "git_available",
    "pull",
    "push",
    "rejected_error",
]


class _Transport:
    """One implementation's moves, as ``exchange`` uses them."""

    def __init__(self, implementation: Implementation) -> None:
        self.implementation: Implementation = implementation

    def listing(
        self, start_dir: str, remote: str, direction: Direction
    ) -> AbstractContextManager[Callable[[], dict[str, str]]]:
        if self.implementation == "git":
            return git_listing(start_dir, remote, direction)
        from mlops_lite.store.transport.dulwich_client import dulwich_list

        return nullcontext(lambda: dulwich_list(start_dir, remote, direction))

    def fetch(
        self,
        start_dir: str,
        remote: str,
        take: dict[str, str],
        objects_only: dict[str, str],
        progress: bool,
    ) -> FetchReport:
        if self.implementation == "git":
            return git_fetch(start_dir, remote, take, objects_only, progress)
        from mlops_lite.store.transport.dulwich_client import dulwich_fetch

        return dulwich_fetch(start_dir, remote, take, objects_only, progress)

    def push(
        self, start_dir: str, remote: str, progress: bool, deletions: dict[str, str] | None
    ) -> TransferResult:
        if self.implementation == "git":
            return git_push(start_dir, remote, progress, deletions=deletions)
        from mlops_lite.store.transport.dulwich_client import dulwich_push

        return dulwich_push(start_dir, remote, progress, deletions=deletions)


def push(
    start_dir: str, remote: str, *, implementation: Implementation, progress: bool
) -> TransferResult:
    """Push every `refs/mlops/*` ref (and the objects it needs) to `remote`, never forcing.

    Runs the team deleted are deleted there too, and run refs an archive covers.
    """
    began = time.perf_counter()
    result = push_refs(start_dir, remote, _Transport(implementation), progress)
    result.elapsed_seconds = time.perf_counter() - began
    return result


def pull(
    start_dir: str, remote: str, *, implementation: Implementation, progress: bool
) -> TransferResult:
    """Fetch the remote's `refs/mlops/*` refs into the same local refs, never forcing.

    Deleted runs stay deleted, and runs an archive holds come in the archive.
    """
    began = time.perf_counter()
    result = pull_refs(start_dir, remote, _Transport(implementation), progress)
    result.elapsed_seconds = time.perf_counter() - began
    return result


def fetch_objects(
    start_dir: str, remote: str, *, implementation: Implementation, progress: bool
) -> dict[str, str]:
    """The remote's `refs/mlops/*` (``{ref: sha}``), every object they reach fetched here.

    No local ref is created or moved: what ``gc --blobs`` reads to see which
    chunks a teammate's pushed runs use without taking their runs in. Refs
    whose value is here already cost no transfer.
    """
    transport = _Transport(implementation)
    with transport.listing(start_dir, remote, "pull") as listed:
        theirs = listed()
    checked = run_git(
        start_dir,
        "cat-file",
        "--batch-check",
        stdin="".join(f"{sha}\n" for sha in theirs.values()).encode(),
    )
    absent = {line.split()[0] for line in checked.splitlines() if line.endswith(" missing")}
    missing = {name: sha for name, sha in theirs.items() if sha in absent}
    if missing:
        transport.fetch(start_dir, remote, {}, missing, progress)
    return theirs


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
        run_git(start_dir, "config", "--add", f"remote.{remote}.fetch", REFSPEC)
        return True
    with Repo.discover(start_dir) as repo:
        config = repo.get_config()
        config.add(section, b"fetch", REFSPEC.encode())
        config.write_to_path()
    return True
