"""The maintenance process itself: ``python -m mlops_lite.store.background_job ROOT``.

Merges packs, folds old runs into archives and archives into roots in the repository at ``ROOT``,
holding the maintenance lock (another process at work: it leaves at once).
Started by ``background.start_maintenance``; it reports nothing.
"""

from __future__ import annotations

import fcntl
import os
import sys

from mlops_lite.store.folding import fold_archives, fold_old_runs
from mlops_lite.store.index import RunIndex
from mlops_lite.store.maintenance import (
    consolidate_packs,
    maintenance_lock,
    write_commit_graph,
)
from mlops_lite.store.repository import GitStore

__all__ = ["main", "run_maintenance"]


def run_maintenance(root: str) -> None:
    """Merge packs and fold old runs in the repository at ``root`` (holding the lock)."""
    with GitStore(root) as store:
        assert store.state_dir is not None
        os.makedirs(store.state_dir, exist_ok=True)
        with open(maintenance_lock(store.state_dir), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            index = RunIndex(store)
            try:
                folded = fold_old_runs(store, index) + fold_archives(store, index)
            finally:
                index.close()
            # Under the same lock: whoever waits for the lock sees the merge done.
            merged = consolidate_packs(store.root, store.pack_dir, store.state_dir, locked=True)
            if folded or merged:
                write_commit_graph(store.root)


def main() -> None:
    """The entry point of the detached process."""
    try:
        run_maintenance(sys.argv[1])
    except Exception:
        pass  # housekeeping: nobody waits for this process, and the next run tries again


if __name__ == "__main__":
    main()
