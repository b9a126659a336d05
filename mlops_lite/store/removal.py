"""Deleting runs: their refs go, the archives holding them are rewritten, and the deletion sticks.

A run is deleted by removing what holds it: its own ref, and in every archive
holding it, the archive itself, replaced by one of the runs it still holds
(``archives.py``: the new archive is made from the old one's listing alone),
and every root above it, replaced by one holding the new archive, up to the
archive refs, all in one ref transaction.
Before any ref moves, the run is remembered as deleted (``deletions.py``): for
the whole team in the ``refs/mlops/deleted`` ledger, or in this clone only, so
a crash half-way leaves the run hidden, and no pull brings it back. Objects
are not touched: ``git gc`` frees them once nothing reaches them (a kept run
that reused a deleted run's outputs reaches those outputs itself, so they stay).
"""

from __future__ import annotations

from collections.abc import Mapping

from mlops_lite.core.graph import inverted, reachable
from mlops_lite.errors import MlopsLiteError, StoreError
from mlops_lite.store.archives import (
    ARCHIVE_PREFIX,
    Listing,
    archive_height,
    archive_ref,
    archive_time,
    archive_tips,
    build_archive,
    build_root,
    read_archive,
)
from mlops_lite.store.deletions import add_local_deletions, deleted_runs
from mlops_lite.store.git import git_available, run_git
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.ledgers import DELETED_REF, set_entries
from mlops_lite.store.objects import GitObject
from mlops_lite.store.refs import RefChange

__all__ = ["freed_bytes", "purge_archives", "remove_runs"]


def remove_runs(
    store: Store, index: RunIndex, runs: Mapping[str, str], *, for_the_team: bool
) -> None:
    """Delete ``{run ref: sha}``: remembered as deleted first, then every holder rewritten."""
    if not runs:
        return
    index.refresh()
    holders = index.holders_of(list(runs))  # before the index stops listing them
    archives = {
        name
        for ref, sha in runs.items()
        if holders.get(ref, ("", set()))[0] == sha
        for name in holders[ref][1]
    }
    if for_the_team:
        set_entries(
            store,
            DELETED_REF,
            dict(runs),
            message=f"mlops-lite: deleted {len(runs)} run(s) for the team\n",
        )
    else:
        assert store.state_dir is not None, "a store without local state deletes for the team"
        add_local_deletions(store.state_dir, runs)
    children = index.archive_children()
    _remove_holders(store, runs, sorted(archives - children.keys()), children)
    index.refresh()


def purge_archives(store: Store, index: RunIndex) -> int:
    """Rewrite the archives that still hold deleted runs (deleted by a teammate, say).

    Reads every archive of runs the archive refs reach: what ``mlops-lite gc``
    does, not every pull. Returns how many archives of runs were rewritten.
    """
    deleted = deleted_runs(store)
    if not deleted:
        return 0
    index.refresh()
    children = index.archive_children()
    affected = []
    for sha in _archives_of_runs(store, children):
        try:
            listing = read_archive(store.read_object, sha).listing.complete()
        except MlopsLiteError:
            continue  # not one we can rewrite: left as it is
        if any(
            deleted.get(ref) == run for ref, run in zip(listing.refs, listing.shas, strict=True)
        ):
            affected.append(sha)
    _remove_holders(store, deleted, affected, children)
    index.refresh()
    return len(affected)


def _archives_of_runs(store: Store, children: dict[str, list[str]]) -> list[str]:
    """Every archive commit the archive refs reach that is not a root."""
    tips = archive_tips(store.refs)
    return sorted(sha for sha in reachable(tips, children) if sha not in children)


def _remove_holders(
    store: Store, runs: Mapping[str, str], archives: list[str], children: dict[str, list[str]]
) -> None:
    """Delete the runs' own refs and replace ``archives`` by archives without them, at once.

    Every root above a replaced archive is replaced too, up to the archive
    refs, so nothing reaches the deleted runs any more (``children``: what
    each root holds).
    """
    present = store.refs.list(RUNS_PREFIX)
    changes: list[RefChange] = [
        (ref, sha, None) for ref, sha in runs.items() if present.get(ref) == sha
    ]
    objects: list[GitObject] = []
    replaced: dict[str, str | None] = {}
    for sha in archives:
        replaced[sha] = _without(store, sha, runs, objects)
    above = reachable(archives, inverted(children)) - set(archives)
    heights: dict[str, int] = {}

    def read_new_or_stored(sha: str, kind: int | None = None) -> bytes:
        new = next((obj for obj in objects if obj.id == sha), None)
        return bytes(new.data) if new is not None else store.read_object(sha, kind)

    for root in sorted(above, key=lambda root: (archive_height(root, children, heights), root)):
        kept = [replaced.get(child, child) for child in children[root]]
        remaining = {child: archive_time(read_new_or_stored, child) for child in kept if child}
        if not remaining:
            replaced[root] = None
        elif sorted(remaining) == sorted(children[root]):
            replaced[root] = root
        else:
            new_root, root_objects = build_root(remaining)
            objects += root_objects
            replaced[root] = new_root.id
    tips = set(archive_tips(store.refs))
    for sha in sorted(tips & replaced.keys()):
        new = replaced[sha]
        if new == sha:
            continue
        changes.append((archive_ref(sha), sha, None))
        if new is not None and new not in tips and (archive_ref(new), None, new) not in changes:
            changes.append((archive_ref(new), None, new))
    keep = store.write_objects(objects, ref=ARCHIVE_PREFIX) if objects else None
    try:
        store.refs.update_many(changes)
    finally:
        if keep is not None:
            keep.release()


def _without(
    store: Store, sha: str, runs: Mapping[str, str], objects: list[GitObject]
) -> str | None:
    """The archive holding what archive ``sha`` holds but ``runs`` (None if it empties)."""
    listing = read_archive(store.read_object, sha).listing
    kept = [
        position
        for position, (ref, run) in enumerate(zip(listing.refs, listing.shas, strict=True))
        if runs.get(ref) != run
    ]
    if len(kept) == len(listing):
        return sha
    if not kept:
        return None
    archive, archive_objects = build_archive(_subset(listing, kept))
    objects += archive_objects
    return archive.id


def _subset(listing: Listing, positions: list[int]) -> Listing:
    """The listing of the runs at ``positions`` only, with their values and cache keys."""
    moved = {old: new for new, old in enumerate(positions)}
    subset = Listing()
    for name in (
        "refs", "shas", "statuses", "start_times", "end_times", "code_commits", "authors",
        "author_names", "hosts", "parameters", "metadata",
    ):  # fmt: skip
        column = getattr(listing, name)
        setattr(subset, name, [column[position] for position in positions])
    for run, name, data, number in zip(
        listing.value_runs, listing.value_names, listing.value_data, listing.value_numbers,
        strict=True,
    ):  # fmt: skip
        if run in moved:
            subset.value_runs.append(moved[run])
            subset.value_names.append(name)
            subset.value_data.append(data)
            subset.value_numbers.append(number)
    for run, key, step in zip(
        listing.cache_runs, listing.cache_keys, listing.cache_steps, strict=True
    ):
        if run in moved:
            subset.cache_runs.append(moved[run])
            subset.cache_keys.append(key)
            subset.cache_steps.append(step)
    return subset


def freed_bytes(root: str, deleted: list[str], kept: list[str]) -> int | None:
    """Bytes the next ``git gc`` frees once the ``deleted`` commits are reached by nothing.

    What ``git rev-list --disk-usage`` counts as reachable from them and not
    from ``kept`` (every other ref's value and every other run). None when git
    cannot tell (not installed, or an object is missing).
    """
    if not deleted:
        return 0
    if not git_available():
        return None
    lines = [*deleted, *(f"^{sha}" for sha in kept)]
    try:
        output = run_git(
            root,
            "rev-list",
            "--objects",
            "--disk-usage",
            "--stdin",
            stdin="".join(line + "\n" for line in lines).encode(),
        )
        return int(output.strip() or 0)
    except (StoreError, ValueError):
        return None  # only an estimate: unknown rather than wrong
