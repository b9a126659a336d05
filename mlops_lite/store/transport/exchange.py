"""What a push or a pull moves: runs, archives and ledgers, with deletions that stick.

Both start the same way (``_sync_control``): the remote's ledgers
(``ledgers.py``: deleted and pinned runs) are fetched and joined with ours,
and its archives (``archives.py``) are fetched when they hold a run that is
neither deleted nor held by an archive we have. Then:

- **pull** fetches the remaining refs, except the runs that are deleted
  (for the team or here) or that an archive already holds, then tidies
  (``folding.tidy``): refs of deleted runs go, refs an archive covers go, old
  runs are folded. So a deletion travels to every teammate who pulls, and a
  pull brings back no run deleted here. (A pull makes one fetch: the refs,
  chosen with what this clone knows, and the remote's ledgers and archives
  with them; what those then delete or cover is what ``tidy`` drops.)
- **push** tidies, pushes every ref (``refs/mlops/*``: what is left is what
  the remote should have), then deletes on the remote, each only if it still
  has the value we saw: the refs of runs the team ledger deletes, run refs an
  archive on the remote covers, and archives whose every run is deleted or
  held by another archive there. So a teammate's push cannot bring back a
  deleted run, and the remote keeps few refs however many runs it holds.

Nothing is forced; run refs are never moved once they exist.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final, Protocol

from mlops_lite.errors import MlopsLiteError, StoreError
from mlops_lite.store.archives import (
    ARCHIVE_PREFIX,
    Archive,
    ArchiveTree,
    archive_tree,
    archives_kept,
    count_held_runs,
    parse_archive_ref,
    read_node,
)
from mlops_lite.store.deletions import deleted_runs
from mlops_lite.store.folding import drop_deleted_refs, tidy
from mlops_lite.store.index import RunIndex
from mlops_lite.store.index_sync import prefetch_objects
from mlops_lite.store.layout import MLOPS_PREFIX, RUNS_PREFIX
from mlops_lite.store.ledgers import DELETED_REF, LEDGER_REFS, join_ledger, read_ledger
from mlops_lite.store.refs import DiskRefs
from mlops_lite.store.repository import GitStore
from mlops_lite.store.transport.result import (
    RUN_EXISTS,
    Direction,
    FetchReport,
    Implementation,
    TransferResult,
    merge_diverged_metadata,
    plan_pull,
)

__all__ = ["Transport", "pull_refs", "push_refs"]

# Ledger refs are joined by a merge commit, never fast-forwarded by git itself.
_CONTROL_PREFIXES: Final = (ARCHIVE_PREFIX, *LEDGER_REFS)


class Transport(Protocol):
    """The moves a transport makes (``git_cli.py``, ``dulwich_client.py``)."""

    implementation: Implementation

    def listing(
        self, start_dir: str, remote: str, direction: Direction
    ) -> AbstractContextManager[Callable[[], dict[str, str]]]:
        """The remote's ``refs/mlops/*`` asked for now; the callable waits for ``{ref: sha}``.

        Errors name the ``direction``.
        """

    def fetch(
        self,
        start_dir: str,
        remote: str,
        take: dict[str, str],
        objects_only: dict[str, str],
        progress: bool,
    ) -> FetchReport:
        """Fetch ``take`` into the same local refs, and the objects of ``objects_only``."""

    def push(
        self, start_dir: str, remote: str, progress: bool, deletions: dict[str, str] | None
    ) -> TransferResult:
        """Push every ``refs/mlops/*`` ref, or delete ``deletions`` (with their expected values)."""


def _control(name: str) -> bool:
    return name.startswith(_CONTROL_PREFIXES)


def pull_refs(start_dir: str, remote: str, transport: Transport, progress: bool) -> TransferResult:
    """Fetch the remote's runs, archives and ledgers (see the module's docstring)."""
    result = TransferResult("pull", remote, transport.implementation)
    with transport.listing(start_dir, remote, "pull") as listed:
        theirs = listed()
    with GitStore.open(start_dir) as store:
        index = RunIndex(store)
        try:
            before = ours = store.refs.list(MLOPS_PREFIX)
            listed_before = index.count()
            rest = {name: sha for name, sha in theirs.items() if not _control(name)}
            take, refused = plan_pull(rest, ours)
            result.rejected.update(refused)
            # Runs deleted or archived on the remote's side are dropped by ``tidy`` below,
            # once its ledgers and archives are here: one fetch brings everything.
            take = _without_held_or_deleted(store, index, take, ours)
            # An index that holds no archive yet (a fresh clone's) is built by the first
            # command that reads runs, from the archives taken here: reading and indexing
            # them in the pull too would cost it as much again as the transfer's excess
            # over a plain clone (2.5 s at 100,000 runs).
            unindexed = not index.known_archives()
            result.advertised = dict(take)  # what a refused registry ref is merged from
            changed = any(ours.get(name) != sha for name, sha in take.items())
            control = _control_objects(store, theirs)
            if changed or control:
                # One round trip for runs, ledgers and archives: a second negotiation
                # cost 0.9 s of a 4 s pull into a fresh clone of 10,000 runs.
                report = transport.fetch(
                    start_dir, remote, take if changed else {}, control, progress
                )
                result.rejected.update(report.rejected)
                result.transferred_objects = _add(result.transferred_objects, report.objects)
                result.transferred_bytes = _add(result.transferred_bytes, report.bytes)
                if changed:
                    merge_diverged_metadata(start_dir, take, result)
                    _restore_moved_runs(store, ours, result)
            _sync_control(
                store, index, start_dir, remote, theirs, transport, progress, result, unindexed
            )
            if unindexed:
                drop_deleted_refs(store)  # the rest of tidy waits for the index
            else:
                tidy(store, index)
            after = store.refs.list(MLOPS_PREFIX)
            if not unindexed:  # counted by ``_take_unread`` otherwise
                result.archived_runs = max(
                    0, index.count() - listed_before - _new_run_refs(before, after)
                )
        finally:
            index.close()
    result.unchanged = sorted(name for name, sha in theirs.items() if before.get(name) == sha)
    result.created = sorted(name for name in after if name not in before)
    result.updated = sorted(
        name
        for name in after
        if name in before and before[name] != after[name] and name not in result.merged
    )
    result.deleted = sorted(name for name in before if name not in after)
    if result.transferred_objects is None and not result.created and not result.updated:
        result.transferred_objects, result.transferred_bytes = 0, 0
    return result


def push_refs(start_dir: str, remote: str, transport: Transport, progress: bool) -> TransferResult:
    """Push our runs, archives and ledgers, and delete what the remote should no longer have."""
    scratch = TransferResult("pull", remote, transport.implementation)
    with (
        transport.listing(start_dir, remote, "push") as listed,
        GitStore.open(start_dir) as store,
    ):
        index = RunIndex(store)
        try:
            tidy(store, index)  # while the remote answers
            theirs = listed()
            if _sync_control(store, index, start_dir, remote, theirs, transport, progress, scratch):
                tidy(store, index)  # a ledger joined or an archive taken: a run may go
            ours = store.refs.list(MLOPS_PREFIX)
            if all(theirs.get(name) == sha for name, sha in ours.items()):
                result = TransferResult("push", remote, transport.implementation)
                result.unchanged = sorted(ours)
                result.transferred_objects, result.transferred_bytes = 0, 0
            else:
                result = transport.push(start_dir, remote, progress, None)
            on_remote = dict(theirs)
            on_remote.update({name: ours[name] for name in result.created + result.updated})
            deletions = _remote_deletions(store, index, on_remote, ours)
        finally:
            index.close()
    if deletions:
        deleted = transport.push(start_dir, remote, progress, deletions)
        result.deleted += deleted.deleted
        result.kept.update(deleted.kept)
    return result


def _sync_control(
    store: GitStore,
    index: RunIndex,
    start_dir: str,
    remote: str,
    theirs: dict[str, str],
    transport: Transport,
    progress: bool,
    result: TransferResult,
    unindexed: bool = False,
) -> bool:
    """Join the remote's ledgers into ours; take its archives that hold something new to us.

    Whether it changed anything here (a ledger joined, an archive taken).
    ``unindexed``: the index holds no archive and is left for later (``_take_unread``).
    """
    ours = store.refs.list(MLOPS_PREFIX)
    ledgers = {name: sha for name, sha in theirs.items() if name in LEDGER_REFS}
    ledgers = {name: sha for name, sha in ledgers.items() if ours.get(name) != sha}
    archives = {
        name: sha
        for name, sha in theirs.items()
        if name.startswith(ARCHIVE_PREFIX) and name not in ours
    }
    refused = {name: sha for name, sha in archives.items() if parse_archive_ref(name) != sha}
    for name in refused:
        result.rejected[name] = "an archive ref must name its own commit: refused"
        del archives[name]
    missing = {
        name: sha for name, sha in {**ledgers, **archives}.items() if not store.has_object(sha)
    }
    if missing:
        report = transport.fetch(start_dir, remote, {}, missing, progress)
        result.transferred_objects = _add(result.transferred_objects, report.objects)
        result.transferred_bytes = _add(result.transferred_bytes, report.bytes)
    for name, sha in ledgers.items():
        if not join_ledger(store, name, sha):
            result.rejected[name] = "the remote's ledger cannot be read: kept ours"
    if not archives:
        return bool(ledgers)
    if unindexed:
        return _take_unread(store, archives, result) or bool(ledgers)
    changed = bool(ledgers)
    deleted = deleted_runs(store)
    index.refresh()
    known = index.known_archives()
    indexed_archives = bool(known)
    taken: set[tuple[str, str]] = set()  # (ref, sha) of the runs archives taken here hold
    # Trees taken whose runs are not in ``taken`` yet: a fresh clone takes roots
    # only, and never needs the set of its 100,000 runs.
    untallied: list[ArchiveTree] = []
    # Each archive is read once: to decide whether to take it, then to index it.
    with archives_kept():
        for name, sha in sorted(archives.items()):
            # Down through roots, but not into the archives we hold already.
            tree = archive_tree(
                store.read_object,
                sha,
                known=known,
                prefetch=lambda shas: prefetch_objects(store, shas, archives=True).read_object,
            )
            if sha in tree.skipped:
                result.rejected[name] = f"not a readable archive ({tree.skipped[sha]})"
                continue
            # A root is taken even if it holds nothing new: folding keeps one of two
            # roots holding the same.
            if not tree.roots:
                for earlier in untallied:
                    taken.update(earlier.runs())
                untallied.clear()
                if not _holds_new_runs(index, tree, deleted, taken, indexed_archives):
                    continue  # every run it holds is deleted or held by an archive we have
            try:
                store.refs.compare_and_swap(name, None, sha)
            except StoreError:
                continue  # taken by another pull meanwhile
            changed = True
            # What the index would know had it been refreshed now (once, below, is enough).
            untallied.append(tree)
            known.update(tree.archives, tree.roots, tree.skipped)
        index.refresh()
    return changed


def _take_unread(store: GitStore, archives: dict[str, str], result: TransferResult) -> bool:
    """Take the remote's archives, each read down to its own commit only; whether one was.

    What roots hold is read when the index is first built. An archive whose top
    cannot be read is refused, as ``_sync_control`` refuses it; an archive of
    runs all deleted or held by an archive of runs taken before it is left, as
    there. (Unlike there, it is taken when only a root taken here holds them.)
    ``archived_runs`` is counted from the commits (``count_held_runs``).
    """
    deleted = deleted_runs(store)
    held: set[tuple[str, str]] = set()  # the runs of the archives of runs taken
    taken: list[str] = []
    for name, sha in sorted(archives.items()):
        try:
            node = read_node(store.read_object, sha)
        except MlopsLiteError as error:
            result.rejected[name] = f"not a readable archive ({error})"
            continue
        if isinstance(node, Archive):
            runs = list(zip(node.listing.refs, node.listing.shas, strict=True))
            if all(deleted.get(ref) == run or (ref, run) in held for ref, run in runs):
                continue
            held.update(runs)
        try:
            store.refs.compare_and_swap(name, None, sha)
        except StoreError:
            continue  # taken by another pull meanwhile
        taken.append(sha)
    result.archived_runs = count_held_runs(store.read_objects, taken)
    return bool(taken)


def _holds_new_runs(
    index: RunIndex,
    tree: ArchiveTree,
    deleted: dict[str, str],
    taken: set[tuple[str, str]],
    indexed_archives: bool,
) -> bool:
    """Whether ``tree`` holds a run not deleted, not ``taken``, not held by an archive here."""
    runs = list(tree.runs())
    # With no archive indexed here (a fresh clone), none holds anything: nothing to look up.
    holders = index.holders_of([ref for ref, _ in runs]) if indexed_archives else {}
    return any(
        deleted.get(ref) != run
        and (ref, run) not in taken
        and not _held_by_archive(holders, ref, run)
        for ref, run in runs
    )


def _control_objects(store: GitStore, theirs: dict[str, str]) -> dict[str, str]:
    """The remote's ledgers and archives (well named) whose commits are not here yet."""
    return {
        name: sha
        for name, sha in theirs.items()
        if (name in LEDGER_REFS or parse_archive_ref(name) == sha) and not store.has_object(sha)
    }


def _held_by_archive(
    holders: dict[str, tuple[str, set[str]]], ref: str, sha: str, among: set[str] | None = None
) -> bool:
    """Whether an archive here (one of ``among``, when given) holds run ``ref`` at ``sha``."""
    listed = holders.get(ref)
    if listed is None or listed[0] != sha:
        return False
    return bool(listed[1] if among is None else listed[1] & among)


def _without_held_or_deleted(
    store: GitStore, index: RunIndex, take: dict[str, str], ours: dict[str, str]
) -> dict[str, str]:
    """``take`` without the run refs of runs deleted or already held by an archive here."""
    deleted = deleted_runs(store)
    runs = [name for name in take if name.startswith(RUNS_PREFIX) and name not in ours]
    index.refresh()
    holders = index.holders_of(runs)
    skipped = {
        name
        for name in runs
        if deleted.get(name) == take[name] or _held_by_archive(holders, name, take[name])
    }
    return {name: sha for name, sha in take.items() if name not in skipped}


def _remote_deletions(
    store: GitStore, index: RunIndex, on_remote: dict[str, str], ours: dict[str, str]
) -> dict[str, str]:
    """``{ref: its value there}`` the remote should no longer have (see the module's docstring)."""
    try:
        shared = {ref: entry.value for ref, entry in read_ledger(store, DELETED_REF).items()}
    except MlopsLiteError:
        shared = {}
    archives_there = {sha for name, sha in on_remote.items() if parse_archive_ref(name) == sha}
    runs = [name for name in on_remote if name.startswith(RUNS_PREFIX)]
    holders = index.holders_of(runs)
    deletions = {}
    for name in runs:
        sha = on_remote[name]
        if shared.get(name) == sha:
            deletions[name] = sha
        elif ours.get(name) != sha and _held_by_archive(holders, name, sha, archives_there):
            deletions[name] = sha  # an archive there holds it
    for name, sha in on_remote.items():
        if parse_archive_ref(name) != sha or name in ours:
            continue
        tree = archive_tree(store.read_object, sha)
        if tree.skipped:
            continue  # holds what we cannot read: left alone
        held = list(tree.runs())
        others = index.holders_of([ref for ref, _ in held])
        elsewhere = archives_there - {sha}
        if all(
            shared.get(ref) == run or _held_by_archive(others, ref, run, elsewhere)
            for ref, run in held
        ):
            deletions[name] = sha
    return deletions


def _new_run_refs(before: dict[str, str], after: dict[str, str]) -> int:
    return sum(1 for name in after if name.startswith(RUNS_PREFIX) and name not in before)


def _add(total: int | None, more: int | None) -> int | None:
    if more is None:
        return total
    return (total or 0) + more


def _restore_moved_runs(store: GitStore, before: dict[str, str], result: TransferResult) -> None:
    """Put back a run ref the fetch moved (the remote changed after it was listed)."""
    if not isinstance(store.refs, DiskRefs):
        return
    after = store.refs.list(RUNS_PREFIX)
    for name, sha in before.items():
        if name.startswith(RUNS_PREFIX) and after.get(name, sha) != sha:
            try:
                store.refs.compare_and_swap(name, after[name], sha)
            except StoreError:
                continue  # moved again by someone else: theirs to explain
            result.rejected[name] = RUN_EXISTS
