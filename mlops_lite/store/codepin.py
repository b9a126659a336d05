"""Pinning a run to the code that made it: ``HEAD``, or a snapshot of a dirty work tree.

The snapshot is built in a temporary index file, so the user's index, ``HEAD``
and work tree are never touched. Its author date is ``HEAD``'s, so the same
dirty state always gives the same snapshot commit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from mlops_lite.store.git import run_git
from mlops_lite.store.objects import Identity

__all__ = ["CodePin", "pin_code"]


@dataclass(frozen=True, slots=True)
class CodePin:
    """The commit a run is pinned to, and how it was chosen."""

    commit: str  # what the run commit's first parent is: HEAD, or the snapshot
    dirty: bool
    base_commit: str | None  # HEAD when the run started (None on an unborn branch)
    branch: str | None

    def to_dict(self) -> dict[str, Any]:
        """The form recorded in the run record's ``code`` field."""
        return asdict(self)


def pin_code(root: str, git_dir: str, identity: Identity) -> CodePin:
    """The commit this run is pinned to, snapshotting the work tree when it is dirty."""
    status = run_git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    head: str | None = None
    branch: str | None = None
    dirty = False
    for entry in status.split("\0"):
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            head = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            name = entry.removeprefix("# branch.head ")
            branch = None if name == "(detached)" else name
        elif entry and not entry.startswith("#"):
            dirty = True
    if head is not None and not dirty:
        return CodePin(commit=head, dirty=False, base_commit=head, branch=branch)
    return CodePin(
        commit=_snapshot(root, git_dir, head, identity), dirty=True, base_commit=head, branch=branch
    )


def _snapshot(root: str, git_dir: str, head: str | None, identity: Identity) -> str:
    with tempfile.TemporaryDirectory(prefix="mlops-lite-index-") as scratch:
        index = os.path.join(scratch, "index")
        user_index = os.path.join(git_dir, "index")
        if os.path.exists(user_index):
            # A copy keeps git's stat cache, so unchanged files are not rehashed.
            shutil.copyfile(user_index, index)
        env = {"GIT_INDEX_FILE": index}
        run_git(root, "add", "--all", "--", ".", env=env)
        tree = run_git(root, "write-tree", env=env).strip()
        date = run_git(root, "show", "-s", "--format=@%ct %z", head).strip() if head else "@0 +0000"
        commit_env = {
            "GIT_AUTHOR_NAME": identity.name,
            "GIT_AUTHOR_EMAIL": identity.email,
            "GIT_COMMITTER_NAME": identity.name,
            "GIT_COMMITTER_EMAIL": identity.email,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }
        parents = ["-p", head] if head else []
        message = f"mlops-lite snapshot of the work tree\n\nbase: {head or '(no commit yet)'}\n"
        return run_git(
            root, "commit-tree", tree, *parents, env=commit_env, stdin=message.encode()
        ).strip()
