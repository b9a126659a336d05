"""``mlops-lite gc --blobs``: what the team's runs use, read before any run is deleted.

The referenced chunks are those named by a pointer reachable from every ref
of this repository (runs, archives, registries, pins, metadata, branches,
``HEAD``) and from every ``refs/mlops/*`` ref of the team's remote, whose
objects are fetched first without moving a local ref (a teammate's pushed
run that was never pulled here counts; so does a run deleted here only, which
the remote still holds). An unreachable remote stops ``gc`` before anything
is deleted: without it, a teammate's data would look unused.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlops_lite.errors import ConfigError, MlopsLiteError, RemoteError
from mlops_lite.store import GitStore
from mlops_lite.store.archives import Root, read_node
from mlops_lite.store.chunk_collection import (
    ChunkCollection,
    collect_chunks,
    referenced_chunks,
)
from mlops_lite.store.git import resolve_commit, run_git
from mlops_lite.store.index import RunIndex

__all__ = ["collect_unused_chunks", "read_team_refs"]


def read_team_refs(store: GitStore, remote: str) -> dict[str, str]:
    """The remote's ``refs/mlops/*`` with their objects here; the error says nothing was deleted."""
    from mlops_lite.operations.sharing import fetch_remote_objects

    if store.chunk_store is None:
        raise ConfigError(
            "gc --blobs collects chunks of the artifact store, and this project configures "
            "none ([tool.mlops-lite] artifact_store in pyproject.toml); drop --blobs"
        )
    try:
        theirs = fetch_remote_objects(remote, path=store.root, quiet=True)
    except RemoteError as error:
        refused = type(error)(
            f"gc --blobs needs the team's remote {remote!r} to see which chunks teammates' "
            f"runs use, and could not read it ({error}). Nothing was deleted: retry when "
            "it is reachable, name another with --remote, or run gc without --blobs"
        )
        setattr(refused, "exit_code", getattr(error, "exit_code", 1))  # noqa: B010
        raise refused from error
    absent = _absent(store.root, list(theirs.values()))
    if absent:
        raise RemoteError(
            f"gc --blobs: {len(absent)} ref(s) of {remote!r} moved while gc read them "
            f"(e.g. {sorted(absent)[0]}); nothing was deleted: run gc again"
        )
    return theirs


def collect_unused_chunks(
    store: GitStore,
    index: RunIndex,
    team_refs: Mapping[str, str],
    *,
    going: Mapping[str, str],
    grace_seconds: float,
    dry_run: bool,
) -> ChunkCollection:
    """Collect the store's chunks that no ref here or in ``team_refs`` reaches.

    ``going`` (``{run ref: sha}``) are runs a dry run would delete here:
    counted as gone, so a dry run's figures are those the real gc reaches.
    After a real deletion they are gone already. ``team_refs`` are the
    remote's refs as the deletion leaves them.
    """
    chunks = store.chunk_store
    assert chunks is not None, "read_team_refs refuses a project without an artifact store"
    tips = _local_tips(store, index, going) + list(team_refs.values())
    referenced = referenced_chunks(store.root, tips)
    return collect_chunks(chunks, referenced, grace_seconds=grace_seconds, dry_run=dry_run)


def _local_tips(store: GitStore, index: RunIndex, going: Mapping[str, str]) -> list[str]:
    """The value of every ref here and of ``HEAD``, without ``going`` and the archives holding it.

    An archive (or root) holding a run that goes counts by what else it holds.
    """
    listed = run_git(store.root, "for-each-ref", "--format=%(objectname) %(refname)")
    values = (line.partition(" ") for line in listed.splitlines())
    tips = {sha for sha, _, ref in values if ref and going.get(ref) != sha}
    holders = index.holders_of(list(going)) if going else {}
    leaving = set(going.values())
    # Each archive or root above a leaving run is replaced by what it holds besides
    # it: an archive by its other runs, a root by its children (a child that is a
    # holder itself is expanded in its turn).
    expanded = {name for _, names in holders.values() for name in names}
    for holder in expanded:
        try:
            node = read_node(store.read_object, holder)
        except MlopsLiteError:
            continue  # unreadable: counted whole, which keeps more, never less
        held = node.children if isinstance(node, Root) else node.listing.shas
        tips.discard(holder)
        tips.update(sha for sha in held if sha not in leaving and sha not in expanded)
    head = resolve_commit(store.root, "HEAD")
    return sorted(tips | ({head} if head else set()))


def _absent(root: str, shas: list[str]) -> set[str]:
    """Which of ``shas`` this repository lacks."""
    if not shas:
        return set()
    request = "".join(f"{sha}\n" for sha in shas).encode()
    checked = run_git(root, "cat-file", "--batch-check", stdin=request)
    return {line.split()[0] for line in checked.splitlines() if line.endswith(" missing")}
