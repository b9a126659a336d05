"""Which chunks of the artifact store runs still use, and deleting the others (``gc --blobs``).

A chunk is **referenced** when a chunk pointer (``artifacts.decode_pointer``)
naming it is reachable, as git counts reachability, from one of the commits
the caller gives: the refs of this repository and of the team's remote (see
``operations.chunk_gc``). One ``git rev-list --objects`` walks them, each tree
once however many runs share it, and only the blobs named ``chunks`` (the
pointer's name in an artifact tree) are read.

A chunk that is not referenced is deleted only when it is older than the
grace period by the store's own clock, because a teammate's ``push`` uploads
chunks before it moves the refs that use them; a chunk the store gives no
time for is never deleted, nor one waiting in this clone for upload.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from mlops_lite.errors import RecordError
from mlops_lite.store.artifacts import decode_pointer
from mlops_lite.store.blobstore import ChunkStore, StoredChunk
from mlops_lite.store.git import cat_objects, git_lines

__all__ = ["ChunkCollection", "collect_chunks", "referenced_chunks"]

_POINTER_NAME = "chunks"


def referenced_chunks(root: str, tips: Iterable[str]) -> set[str]:
    """The digests of every chunk a pointer reachable from ``tips`` (commit shas) names.

    StoreError when git cannot walk them (an object is missing): then nobody
    can tell which chunks are unused.
    """
    request = "".join(f"{sha}\n" for sha in dict.fromkeys(tips)).encode()
    if not request:
        return set()
    pointers = []
    # Blobs only (`--filter`): trees are walked but not printed, which halves the output.
    for line in git_lines(
        root, "rev-list", "--objects", "--filter=object:type=blob", "--stdin", stdin=request
    ):
        object_id, _, path = line.partition(" ")
        if path == _POINTER_NAME or path.endswith("/" + _POINTER_NAME):
            pointers.append(object_id)
    digests: set[str] = set()
    for kind, body in cat_objects(root, pointers).values():
        if kind != "blob":
            continue
        try:
            digests.update(digest for digest, _ in decode_pointer(body))
        except RecordError:
            continue  # a file of a directory artifact that happens to be called `chunks`
    return digests


@dataclass
class ChunkCollection:
    """What collecting chunks found and deleted (with ``dry_run``, would delete)."""

    dry_run: bool
    grace_seconds: float
    stored: int = 0
    stored_bytes: int = 0
    referenced: int = 0  # chunks in the store that runs use
    deleted: int = 0
    deleted_bytes: int = 0
    # Unused, but kept: younger than the grace period, no time known, waiting here for upload.
    recent: int = 0
    untimed: int = 0
    waiting: int = 0
    cache_deleted: int = 0
    cache_deleted_bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary (``gc --json``)."""
        return dict(self.__dict__)


def collect_chunks(
    chunks: ChunkStore,
    referenced: set[str],
    *,
    grace_seconds: float,
    dry_run: bool,
    now: float | None = None,
) -> ChunkCollection:
    """Delete the store's chunks no run uses that are older than the grace period; prune the cache.

    The cache (shared by the clones on this machine) loses the chunks deleted
    from the store and those this repository does not use, past the same grace
    period: another project's chunk is fetched again when it is loaded.
    """
    cutoff = (time.time() if now is None else now) - grace_seconds
    result = ChunkCollection(dry_run=dry_run, grace_seconds=grace_seconds)
    waiting = set(chunks.pending())
    going: list[StoredChunk] = []
    for chunk in chunks.stored():
        result.stored += 1
        result.stored_bytes += chunk.size
        if chunk.digest in referenced:
            result.referenced += 1
        elif chunk.digest in waiting:
            result.waiting += 1
        elif chunk.modified is None:
            result.untimed += 1
        elif chunk.modified >= cutoff:
            result.recent += 1
        else:
            going.append(chunk)
    result.deleted = len(going)
    result.deleted_bytes = sum(chunk.size for chunk in going)
    gone = {chunk.digest for chunk in going}
    stale = [
        chunk
        for chunk in chunks.cached()
        if chunk.digest in gone
        or (
            chunk.digest not in referenced
            and chunk.digest not in waiting
            and chunk.modified is not None
            and chunk.modified < cutoff
        )
    ]
    result.cache_deleted = len(stale)
    result.cache_deleted_bytes = sum(chunk.size for chunk in stale)
    if not dry_run:
        chunks.remove_stored([chunk.digest for chunk in going])
        chunks.remove_cached([chunk.digest for chunk in stale])
    return result
