"""Keeping run and archive refs few: runs folded into archives, archives into roots.

The newest ``RECENT_RUNS`` runs keep a ref of their own; once there are
``RECENT_RUNS + ARCHIVE_BATCH``, the oldest finished ones are folded into
archives (``archives.py``) of ``ARCHIVE_BATCH`` runs. Archive refs are folded
in turn: once ``ROOT_FANOUT`` archive refs have the same height (an archive of
runs is 0, a root one more than its highest archive), the oldest are folded
into a root, so a repository of 100,000 runs has at most about 200 run refs
and a few dozen archive refs, whatever its age. Every fold is one ref
transaction: the new archive's ref appears and the refs it holds go at once.

A run ref that an archive already holds (a teammate folded it, and we pulled
the archive) is dropped the same way, and so is the ref of a deleted run, and
an archive ref whose archives another archive ref holds as well (teammates who
folded the same archives into different roots keep the same one).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from mlops_lite.core.graph import reachable
from mlops_lite.store.archives import (
    ARCHIVE_BATCH,
    ARCHIVE_PREFIX,
    ROOT_FANOUT,
    archive_height,
    archive_ref,
    archive_time,
    archive_tips,
    build_archive,
    build_root,
    sorted_listing,
)
from mlops_lite.store.deletions import deleted_runs
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.objects import GitObject
from mlops_lite.store.refs import RefChange

__all__ = [
    "RECENT_RUNS",
    "drop_covered_archives",
    "drop_covered_refs",
    "drop_deleted_refs",
    "fold_archives",
    "fold_old_runs",
    "tidy",
]

# With ARCHIVE_BATCH 100, at most 200 runs have a ref of their own at any time.
RECENT_RUNS: Final = 100
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
    once per ``batch`` runs, not once per run. All archives made at once are
    written as one pack, and appear in one ref transaction.
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
        objects: list[GitObject] = []
        changes: list[RefChange] = []
        folded = 0
        for start in range(0, len(candidates), batch):
            chunk = candidates[start : start + batch]
            listing = sorted_listing(index.listing([ref for ref, _ in chunk]))
            if len(listing) != len(chunk):
                break  # the index changed under us: the next look folds them
            archive, archive_objects = build_archive(listing)
            objects += archive_objects
            changes.append((archive_ref(archive.id), None, archive.id))
            changes += [(ref, sha, None) for ref, sha in chunk]
            folded += len(chunk)
        if changes:
            _write_and_move(store, objects, changes)
        index.refresh()
        return folded


def _write_and_move(store: Store, objects: list[GitObject], changes: list[RefChange]) -> None:
    """Write the new archives' objects in one pack, then move every ref in one transaction."""
    kept = store.write_objects(objects, ref=ARCHIVE_PREFIX)
    try:
        store.refs.update_many(changes)
    finally:
        kept.release()


def fold_archives(store: Store, index: RunIndex, *, fanout: int = ROOT_FANOUT) -> int:
    """Fold archive refs into roots, ``fanout`` of the same height at a time; how many roots.

    Covered archive refs are dropped first (``drop_covered_archives``). The
    oldest whole groups of each height are folded, lowest height first (a new
    root may complete a group one height up), in one pack and one transaction.
    Archive refs found with nothing to do are noted in the index: this runs on
    every push and pull, and the same refs (over the same archives read) give
    the same answer without walking the archives again.
    """
    with _folding_lock(store) as mine:
        if not mine:
            return 0
        index.refresh()
        tips = archive_tips(store.refs)
        if index.settled_archives() == _settled(tips, fanout):
            return 0
        children = index.archive_children()
        if _drop_covered_archives(store, index, tips, children):
            tips = archive_tips(store.refs)
            children = index.archive_children()
        heights: dict[str, int] = {}
        by_height: dict[int, list[str]] = {}
        for tip in tips:
            by_height.setdefault(archive_height(tip, children, heights), []).append(tip)
        if all(len(group) < fanout for group in by_height.values()):
            index.note_settled_archives(_settled(tips, fanout))
            return 0  # nothing to fold: no commit read
        times = {tip: archive_time(store.read_object, tip) for tip in tips}
        objects: list[GitObject] = []
        made: set[str] = set()
        folded: set[str] = set()
        height = 0
        while height <= max(by_height):
            group = sorted(by_height.get(height, ()), key=lambda tip: (times[tip], tip))
            for start in range(0, len(group) // fanout * fanout, fanout):
                chunk = group[start : start + fanout]
                root, root_objects = build_root({tip: times[tip] for tip in chunk})
                objects += root_objects
                times[root.id] = max(times[tip] for tip in chunk)
                by_height.setdefault(height + 1, []).append(root.id)
                made.add(root.id)
                folded.update(chunk)
            height += 1
        if not made:
            return 0
        changes: list[RefChange] = [(archive_ref(sha), None, sha) for sha in sorted(made - folded)]
        changes += [(archive_ref(sha), sha, None) for sha in sorted(folded - made)]
        _write_and_move(store, objects, changes)
        index.refresh()
        return len(made)


def _settled(tips: list[str], fanout: int) -> str:
    return " ".join([str(fanout), *sorted(tips)])


def drop_covered_archives(store: Store, index: RunIndex) -> int:
    """Delete archive refs whose archives other archive refs hold as well; how many went.

    The refs are taken largest first (most archives of runs below them, then by
    name), and one adding no archive to those kept goes: every clone holding
    the same refs keeps the same ones.
    """
    index.refresh()
    return _drop_covered_archives(store, index, archive_tips(store.refs), index.archive_children())


def _drop_covered_archives(
    store: Store, index: RunIndex, tips: list[str], children: dict[str, list[str]]
) -> int:
    covered: set[str] = set()
    dropped: list[RefChange] = []
    below = {tip: _leaves(tip, children) for tip in tips}
    for tip in sorted(tips, key=lambda tip: (-len(below[tip]), tip)):
        if below[tip] <= covered:
            dropped.append((archive_ref(tip), tip, None))
        covered |= below[tip]
    if dropped:
        store.refs.update_many(dropped)
        index.refresh()
    return len(dropped)


def _leaves(sha: str, children: dict[str, list[str]]) -> set[str]:
    """The archives of runs (and unread archives) below archive commit ``sha``, itself if none."""
    return {node for node in reachable([sha], children) if not children.get(node)}


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
    """Deleted runs' refs gone, covered refs dropped, old runs and archives folded.

    What push, pull and gc do.
    """
    drop_deleted_refs(store)
    drop_covered_refs(store, index)
    fold_old_runs(store, index, keep=keep)
    fold_archives(store, index)
