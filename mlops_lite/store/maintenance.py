"""Keeping the object store healthy as runs accumulate: merging small packs.

Every run adds one pack. Reading through hundreds of small packs is slow
(1,000 objects over 1,000 packs: 0.76 s vs 0.013 s after a repack, DESIGN.md),
so past ``PACK_LIMIT`` packs the small ones are merged with git's geometric
repack, which leaves large packs alone and keeps every object reachable or not
(it never prunes), so concurrent writers lose nothing; kept packs (a writer's
packs in flight, ``keeps.py``) are not touched. Readers of a pack it deletes
look again in the new one (``GitStore.read_object``).
"""

from __future__ import annotations

import fcntl
import os
import time

from mlops_lite.errors import StoreError
from mlops_lite.store.git import git_available, run_git

__all__ = ["PACK_LIMIT", "consolidate_packs", "count_packs", "remove_stale_temporaries"]

PACK_LIMIT = 50
# A temporary pack this old was left by a writer that died while writing it.
_TEMPORARY_MAX_AGE = 24 * 3600


def count_packs(pack_dir: str) -> int:
    """How many packs the repository has."""
    try:
        return sum(1 for entry in os.scandir(pack_dir) if entry.name.endswith(".idx"))
    except FileNotFoundError:
        return 0


def consolidate_packs(root: str, pack_dir: str, state_dir: str, *, limit: int = PACK_LIMIT) -> None:
    """Merge small packs when there are more than ``limit`` (at most one process at a time)."""
    if count_packs(pack_dir) <= limit or not git_available():
        return
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "repack.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another process is already merging
        try:
            run_git(root, "repack", "--geometric=2", "-d", "-q", "--no-write-bitmap-index")
        except StoreError:
            pass  # housekeeping only: the next run tries again


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
