"""Pinning a run to the code that made it: ``HEAD``, or a snapshot of a dirty work tree.

The snapshot is built in a temporary index file, so the user's index, ``HEAD``
and work tree are never touched; it leaves out what ``snapshot_rules`` says
(secret files, virtual environments, junk, large files). Its author date is
``HEAD``'s, so the same dirty state always gives the same snapshot commit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
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
    """The commit this run is pinned to, snapshotting the work tree when it is dirty.

    What the snapshot leaves out (secret files, virtual environments, junk,
    large files: ``snapshot_rules``) is named in one warning; a tree whose
    only changes are left out is pinned to ``HEAD``.
    """
    status = run_git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    listing = _parse_status(status)
    head, branch = listing.head, listing.branch
    if head is not None and not listing.dirty:
        return CodePin(commit=head, dirty=False, base_commit=head, branch=branch)
    # Only a dirty tree needs the rules (and pyproject.toml): imported here.
    from mlops_lite.store.snapshot_rules import SnapshotRules, plan_snapshot

    plan = plan_snapshot(root, listing.untracked, listing.changed, SnapshotRules.for_project(root))
    message = plan.warning()
    if message is not None:
        warnings.warn(message, UserWarning, stacklevel=3)
    still_dirty = len(listing.changed) + len(listing.untracked) > plan.files_left_out
    if head is not None and not still_dirty:
        return CodePin(commit=head, dirty=False, base_commit=head, branch=branch)
    commit = _snapshot(root, git_dir, head, identity, plan.pathspecs)
    return CodePin(commit=commit, dirty=True, base_commit=head, branch=branch)


@dataclass
class _Status:
    """What ``git status --porcelain=v2 -z`` says about the work tree."""

    head: str | None = None  # None on an unborn branch
    branch: str | None = None  # None when detached
    changed: list[str] = field(default_factory=list)  # tracked paths with changes
    untracked: list[str] = field(default_factory=list)

    @property
    def dirty(self) -> bool:
        return bool(self.changed or self.untracked)


# Fields before the path in each kind of entry (git-status(1), porcelain v2).
_FIELDS_BEFORE_PATH = {"1": 8, "2": 9, "u": 10}


def _parse_status(output: str) -> _Status:
    status = _Status()
    entries = iter(output.split("\0"))
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            status.head = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            name = entry.removeprefix("# branch.head ")
            status.branch = None if name == "(detached)" else name
        elif entry.startswith("? "):
            status.untracked.append(entry[2:])
        elif entry[:1] in _FIELDS_BEFORE_PATH:
            status.changed.append(entry.split(" ", _FIELDS_BEFORE_PATH[entry[0]])[-1])
            if entry[0] == "2":
                next(entries, None)  # a rename's original path
    return status


def _snapshot(
    root: str, git_dir: str, head: str | None, identity: Identity, pathspecs: list[str]
) -> str:
    with tempfile.TemporaryDirectory(prefix="mlops-lite-index-") as scratch:
        index = os.path.join(scratch, "index")
        user_index = os.path.join(git_dir, "index")
        if os.path.exists(user_index):
            # A copy keeps git's stat cache, so unchanged files are not rehashed;
            # copy2 keeps the index's mtime too, without which git's racy-entry
            # check is lost and a same-size edit made in the second of the last
            # `git add` would be missed.
            shutil.copy2(user_index, index)
        env = {"GIT_INDEX_FILE": index}
        # Pathspecs on stdin: a long list of exclusions never hits the argv limit.
        specs = "\0".join(pathspecs).encode() + b"\0"
        run_git(
            root, "add", "--all", "--pathspec-from-file=-", "--pathspec-file-nul",
            env=env, stdin=specs,
        )  # fmt: skip
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
