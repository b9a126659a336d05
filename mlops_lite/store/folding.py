"""Keeping the number of run refs bounded: folding old runs into archives, dropping covered refs.

The newest ``RECENT_RUNS`` runs keep a ref of their own; once there are
``RECENT_RUNS + ARCHIVE_BATCH``, the oldest finished ones are folded into an
archive (``archives.py``) of ``ARCHIVE_BATCH`` runs, so a repository of
100,000 runs has about 1,000 run refs and 100 archive refs. Folding is one
ref transaction: the archive ref appears and the runs' own refs go at once.
A run ref that an archive already holds (a teammate folded it, and we pulled
the archive) is dropped the same way, and so is the ref of a deleted run.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from mlops_lite.store.archives import ARCHIVE_BATCH, archive_ref, build_archive, sorted_listing
from mlops_lite.store.deletions import deleted_runs
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.refs import RefChange

__all__ = ["RECENT_RUNS", "drop_covered_refs", "drop_deleted_refs", "fold_old_runs", "tidy"]

RECENT_RUNS: Final = 1000
# Runs in these states are never folded: still recording, or not readable here.
_NOT_FOLDED: Final = frozenset({"running", "unreadable"})


@contextmanager
def _folding_lock(store: Store) -> Iterator[bool]:
    """One folder at a time; True when this process holds the lock."""
    if store.state_dir is None:
        yield True
        return
    os.makedirs(store.state_dir, exist_ok=True)
    with open(os.path.join(store.state_dir, "fold.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def fold_old_runs(
    store: Store,
    index: RunIndex,
    *,
    keep: int = RECENT_RUNS,
    batch: int = ARCHIVE_BATCH,
    everything: bool = False,
) -> int:
    """Fold the oldest finished runs beyond the newest ``keep`` into archives; how many were.

    Nothing happens until ``batch`` runs are in excess, and only whole batches
    are folded (``everything``: the remainder too), so a run ref is rewritten
    once per ``batch`` runs, not once per run.
    """
    with _folding_lock(store) as mine:
        if not mine:
            return 0
        index.refresh()
        individual = index.individual_runs()
        excess = len(individual) - keep
        if excess < (1 if everything else batch):
            return 0
        candidates = [
            (ref, sha) for ref, sha, status in individual[:excess] if status not in _NOT_FOLDED
        ]
        if not everything:
            candidates = candidates[: len(candidates) // batch * batch]
        folded = 0
        for start in range(0, len(candidates), batch):
            chunk = candidates[start : start + batch]
            listing = sorted_listing(index.listing([ref for ref, _ in chunk]))
            if len(listing) != len(chunk):
                break  # the index changed under us: the next look folds them
            archive, objects = build_archive(listing)
            name = archive_ref(archive.id)
            kept = store.write_objects(objects, ref=name)
            try:
                changes: list[RefChange] = [(name, None, archive.id)]
                changes += [(ref, sha, None) for ref, sha in chunk]
                store.refs.update_many(changes)
            finally:
                kept.release()
            folded += len(chunk)
        index.refresh()
        return folded


def drop_covered_refs(store: Store, index: RunIndex) -> int:
    """Delete run refs whose run an archive holds as well (same sha); how many went."""
    index.refresh()
    individual = index.individual_runs()
    holders = index.holders_of([ref for ref, _, _ in individual])
    covered = [
        (ref, sha, None)
        for ref, sha, _ in individual
        if holders.get(ref, ("", set()))[1]  # an archive holds it besides its own ref
    ]
    if covered:
        store.refs.update_many(covered)
        index.refresh()
    return len(covered)


def drop_deleted_refs(store: Store) -> int:
    """Delete the refs of deleted runs that are back (a pull of old state, a plain fetch)."""
    deleted = deleted_runs(store)
    if not deleted:
        return 0
    present = store.refs.list(RUNS_PREFIX)
    changes: list[RefChange] = [
        (ref, sha, None) for ref, sha in deleted.items() if present.get(ref) == sha
    ]
    store.refs.update_many(changes)
    return len(changes)


def tidy(store: Store, index: RunIndex, *, keep: int = RECENT_RUNS) -> None:
    """Deleted runs' refs gone, covered refs dropped, old runs folded: what push, pull and gc do."""
    drop_deleted_refs(store)
    drop_covered_refs(store, index)
    fold_old_runs(store, index, keep=keep)
