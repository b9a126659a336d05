"""Keeping the repository healthy as runs accumulate: merging packs, folding runs, git's config.

Every run adds a pack, and reading through hundreds of small packs is slow
(1,000 objects over 1,000 packs: 0.76 s vs 0.013 s after a repack,
DESIGN.md); every run adds a ref, and thousands of refs slow every git command
(``folding.py``). Both are tidied by a process of their own, started in the
background after a run once there is work (``background.py``): merging 2.5 GB
of packs takes tens of seconds, which no run should wait for. Packs are merged
with git's geometric repack, which leaves large packs alone and keeps every
object reachable or not (it never prunes), so concurrent writers lose nothing;
kept packs (a writer's packs in flight, ``keeps.py``) are not touched. Readers
of a pack it deletes look again in the new one (``GitStore.read_object``).
After merging packs or folding runs, git's commit-graph is written (split, so
only new commits are), as ``git maintenance`` does: git then reads the many
parents of archive commits from it when it walks the refs (a branch push).

The first run in a repository also sets two things in its local git config,
once: ``log.excludeDecoration = refs/mlops/`` (run refs never decorate ``git
log``) and ``gc.cruftPacks = true`` (``git gc`` keeps unreachable objects, such
as a deleted run's, in one pack instead of exploding them into loose files),
unless the user set them otherwise.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Final

from mlops_lite.errors import StoreError
from mlops_lite.store.git import git_available, run_git

__all__ = [
    "PACK_LIMIT",
    "configure_repository",
    "consolidate_packs",
    "count_packs",
    "maintenance_lock",
    "remove_stale_temporaries",
    "write_commit_graph",
]

PACK_LIMIT = 50
# A temporary pack this old was left by a writer that died while writing it.
_TEMPORARY_MAX_AGE = 24 * 3600
# The local git config a repository with runs gets once (a file marks it done):
# (key, value, whether the key holds a list of values).
_CONFIG: Final = (("log.excludeDecoration", "refs/mlops/", True), ("gc.cruftPacks", "true", False))
_CONFIGURED: Final = "configured-1"


def count_packs(pack_dir: str) -> int:
    """How many packs the repository has."""
    try:
        return sum(1 for entry in os.scandir(pack_dir) if entry.name.endswith(".idx"))
    except FileNotFoundError:
        return 0


def maintenance_lock(state_dir: str) -> str:
    """The file a maintenance process holds an flock on while it works."""
    return os.path.join(state_dir, "repack.lock")


def consolidate_packs(
    root: str, pack_dir: str, state_dir: str, *, limit: int = PACK_LIMIT, locked: bool = False
) -> bool:
    """Merge small packs when there are more than ``limit`` (at most one process at a time).

    ``locked``: the caller holds the maintenance lock already. True when packs were merged.
    """
    if count_packs(pack_dir) <= limit or not git_available():
        return False
    if locked:
        return _repack(root)
    os.makedirs(state_dir, exist_ok=True)
    with open(maintenance_lock(state_dir), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # another process is already merging
        return _repack(root)


def _repack(root: str) -> bool:
    try:
        run_git(root, "repack", "--geometric=2", "-d", "-q", "--no-write-bitmap-index")
    except StoreError:
        return False  # housekeeping only: the next run tries again
    return True


def write_commit_graph(root: str) -> None:
    """Bring git's commit-graph up to date with what the refs reach, as ``git maintenance`` does.

    Git parses a commit from the graph instead of the object: a walk over the
    remote's refs (every push and fetch of a branch) reads each archive's
    parents from it. ``--split`` writes only the new commits, as a layer on top.
    """
    if not git_available():
        return
    try:
        run_git(root, "commit-graph", "write", "--reachable", "--split", "--no-progress")
    except StoreError:
        pass  # housekeeping only: the next maintenance writes it


def configure_repository(root: str, state_dir: str) -> None:
    """Set the local git config a repository with runs needs, once, keeping the user's own."""
    marker = os.path.join(state_dir, _CONFIGURED)
    if os.path.exists(marker) or not git_available():
        return
    try:
        for key, value, listed in _CONFIG:
            present = _values(root, key)
            if listed and value not in present:
                run_git(root, "config", "--local", "--add", key, value)
            elif not listed and not present:
                run_git(root, "config", "--local", key, value)
        os.makedirs(state_dir, exist_ok=True)
        with open(marker, "w") as f:
            f.write("".join(f"{key} {value}\n" for key, value, _ in _CONFIG))
    except (StoreError, OSError):
        pass  # a read-only repository: nothing to set, and nothing breaks


def _values(root: str, key: str) -> list[str]:
    """The values ``key`` has in any of the user's config files (none: an empty list)."""
    try:
        return run_git(root, "config", "--get-all", key).splitlines()
    except StoreError:
        return []  # git exits 1 for a key that is not set


def remove_stale_temporaries(directory: str, *, max_age: float = _TEMPORARY_MAX_AGE) -> None:
    """Delete temporary pack files older than ``max_age`` seconds (a dead writer's leftovers)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    cutoff = time.time() - max_age
    for entry in entries:
        try:
            if entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            continue
