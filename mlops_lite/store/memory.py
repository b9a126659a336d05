"""An in-memory twin of the git store's objects and refs, for tests and dry runs.

It keeps the same contract as ``GitStore`` — content-addressed objects with git's
ids, refs moved only by compare-and-swap — so logic built on that contract can
be tested without a disk, and one shared test suite holds both to it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from mlops_lite.errors import MissingObjectError, RefConflictError
from mlops_lite.store.artifacts import ArtifactMeta, read_artifact
from mlops_lite.store.objects import GitObject, Identity


class MemoryStore:
    """Objects and refs in dictionaries; safe to share between threads."""

    def __init__(self, identity: Identity | None = None) -> None:
        self.objects: dict[str, GitObject] = {}
        self.refs: dict[str, str] = {}
        self._identity = identity or Identity("Test User", "test@example.com")
        self._lock = threading.Lock()

    @property
    def identity(self) -> Identity:
        return self._identity

    def read_object(self, object_id: str) -> bytes:
        try:
            return bytes(self.objects[object_id].data)
        except KeyError:
            raise MissingObjectError(f"git object {object_id} is missing from the memory store") from None

    def read_blobs(self, object_ids: list[str]) -> Iterator[bytes]:
        return (self.read_object(object_id) for object_id in object_ids)

    def read_artifact(self, artifact_id: str) -> tuple[ArtifactMeta, bytearray]:
        return read_artifact(self.read_object, artifact_id, self.read_blobs)

    def has_object(self, object_id: str) -> bool:
        return object_id in self.objects

    def write_objects(self, objects: Iterable[GitObject]) -> None:
        with self._lock:
            for obj in objects:
                # Keep bytes, not views: the caller's buffer may change after we return.
                self.objects.setdefault(obj.id, GitObject(obj.type_num, bytes(obj.data), obj.id))

    def write_loose_object(self, obj: GitObject) -> None:
        self.write_objects([obj])

    def read_ref(self, name: str) -> str | None:
        return self.refs.get(name)

    def update_ref(self, name: str, new: str, old: str | None) -> None:
        with self._lock:
            current = self.refs.get(name)
            if current != old:
                raise RefConflictError(
                    f"ref {name} changed under us (expected {old or 'no ref'}, found "
                    f"{current or 'no ref'}); nothing was overwritten — run the command again"
                )
            self.refs[name] = new
