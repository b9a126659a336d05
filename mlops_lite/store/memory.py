"""An in-memory twin of the git store, for tests and dry runs.

It keeps the same contract as ``GitStore`` — content-addressed objects with
git's ids, refs moved only by compare-and-swap, derived state rebuilt on demand —
so whole pipelines run against it, and one shared test suite holds both to it.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING

from mlops_lite.errors import MissingObjectError, RecordError
from mlops_lite.store.artifacts import ArtifactMeta, read_artifact
from mlops_lite.store.codepin import CodePin
from mlops_lite.store.keeps import Keep
from mlops_lite.store.objects import TYPE_NAMES, GitObject, Identity, commit, tree
from mlops_lite.store.refs import MemoryRefs

if TYPE_CHECKING:
    from mlops_lite.store.blobstore import ChunkStore

__all__ = ["MemoryStore"]


class MemoryStore:
    """Objects and refs in dictionaries; safe to share between threads."""

    state_dir: str | None = None
    chunk_store: ChunkStore | None = None  # large artifacts stay in memory too

    def __init__(self, identity: Identity | None = None, root: str = "<memory>") -> None:
        self.objects: dict[str, GitObject] = {}
        self.refs = MemoryRefs()
        self.root = root
        self._identity = identity or Identity("Test User", "test@example.com")
        self._lock = threading.Lock()
        empty = tree({})
        self._code = commit(
            tree_id=empty.id, parents=[], author=self._identity, timestamp=0, tz_offset_minutes=0,
            message="mlops-lite memory store: no code\n",
        )  # fmt: skip
        self.write_objects([empty, self._code])

    @property
    def identity(self) -> Identity:
        """The identity runs are recorded under."""
        return self._identity

    def read_object(self, object_id: str, kind: int | None = None) -> bytes:
        """An object's body (of type ``kind``, when given)."""
        try:
            obj = self.objects[object_id]
        except KeyError:
            raise MissingObjectError(
                f"git object {object_id} is missing from the memory store"
            ) from None
        if kind is not None and obj.type_num != kind:
            raise RecordError(
                f"git object {object_id} is a {TYPE_NAMES[obj.type_num].decode()}, "
                f"where a {TYPE_NAMES[kind].decode()} belongs"
            )
        return bytes(obj.data)

    def read_objects(self, object_ids: list[str]) -> dict[str, GitObject]:
        """The objects present among ``object_ids``."""
        return {
            object_id: GitObject(obj.type_num, bytes(obj.data), object_id)
            for object_id in object_ids
            if (obj := self.objects.get(object_id)) is not None
        }

    def stream_objects(self, object_ids: list[str]) -> Generator[GitObject, None, None]:
        """The objects present among ``object_ids``, in order."""
        yield from self.read_objects(object_ids).values()

    def read_blobs(self, object_ids: list[str]) -> Iterator[bytes]:
        """Blob bodies, in order."""
        return (self.read_object(object_id) for object_id in object_ids)

    def read_artifact(
        self, artifact_id: str, *, digest: str | None = None, where: str = ""
    ) -> tuple[ArtifactMeta, bytearray]:
        """An artifact's meta and payload, checked against ``digest`` when given."""
        return read_artifact(
            self.read_object, artifact_id, read_many=self.read_blobs, digest=digest, where=where
        )

    def has_object(self, object_id: str) -> bool:
        """Whether the object is present."""
        return object_id in self.objects

    def write_objects(
        self,
        objects: Iterable[GitObject],
        *,
        ref: str = "",
        while_ref_is: str = "",
        durable: bool = True,
    ) -> Keep:
        """Keep the objects (as bytes: the caller's buffers may change after we return).

        Nothing here prunes, so nothing needs protecting: the keep is a no-op.
        """
        with self._lock:
            for obj in objects:
                self.objects.setdefault(obj.id, GitObject(obj.type_num, bytes(obj.data), obj.id))
        return Keep(None, b"")

    def pin_code(self) -> CodePin:
        """Every run pins the same empty code commit: there is no work tree."""
        return CodePin(commit=self._code.id, dirty=False, base_commit=self._code.id, branch=None)

    def maintain(self, *, individual_runs: int = 0) -> None:
        """Nothing to merge in memory."""

    def release_keeps(self, ref: str) -> None:
        """Nothing is kept in memory."""

    def sweep_keeps(self) -> None:
        """Nothing is kept in memory."""

    def close(self) -> None:
        """Nothing to release."""
