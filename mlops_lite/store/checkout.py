"""Reading a code commit without touching the user's checkout: materialize its tree, diff two pins.

Everything goes through the git CLI with a temporary ``GIT_INDEX_FILE``, so
``HEAD``, the user's index and the work tree are never read or written: a
rerun can rebuild any pinned commit while the user keeps editing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from mlops_lite.errors import MissingObjectError
from mlops_lite.store.git import resolve_commit, run_git

__all__ = ["ChangedFile", "changed_files", "materialize_tree", "patch", "resolve_commit"]


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """One line of ``git diff --name-status``: ``M``, ``A``, ``D``, ``R100``, ..."""

    status: str
    path: str
    old_path: str | None = None


def materialize_tree(root: str, commit: str, destination: str) -> None:
    """Write every file of ``commit``'s tree under ``destination`` (which must exist).

    ``read-tree`` into a throw-away index, then ``checkout-index --prefix``: no
    work tree is involved, checkout filters (LFS, eol) apply as in a real
    checkout, and ``export-ignore`` attributes (which ``git archive`` honours)
    cannot silently drop files. Submodules are not materialized.
    """
    if resolve_commit(root, commit) is None:
        raise MissingObjectError(
            f"code commit {commit} is not in the repository at {root}; fetch the run again with "
            "`mlops-lite pull` (a run's code commit travels with it as its parent)"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-lite-index-") as scratch:
        env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
        run_git(root, "read-tree", commit, env=env)
        prefix = os.path.join(os.path.abspath(destination), "")
        run_git(root, "checkout-index", "--all", "--force", f"--prefix={prefix}", env=env)


def changed_files(root: str, old: str, new: str) -> list[ChangedFile]:
    """Files that differ between two commits, with rename detection."""
    if old == new:
        return []
    output = run_git(root, "diff", "--name-status", "-z", "-M", old, new, "--")
    fields = output.split("\0")
    changes: list[ChangedFile] = []
    position = 0
    while position < len(fields) and fields[position]:
        status = fields[position]
        if status[:1] in ("R", "C"):
            changes.append(ChangedFile(status, fields[position + 2], fields[position + 1]))
            position += 3
        else:
            changes.append(ChangedFile(status, fields[position + 1]))
            position += 2
    return changes


def patch(root: str, old: str, new: str) -> str:
    """``git diff`` between two commits, as text."""
    if old == new:
        return ""
    return run_git(root, "diff", "-M", "--no-color", old, new, "--")
