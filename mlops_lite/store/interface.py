"""The store contract that run recording and reading rely on; GitStore and MemoryStore keep it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from mlops_lite.store.artifacts import ArtifactMeta
from mlops_lite.store.objects import GitObject, Identity


class ObjectRefStore(Protocol):
    """What run recording and reading need from a store."""

    @property
    def identity(self) -> Identity: ...

    def read_object(self, object_id: str) -> bytes: ...

    def read_blobs(self, object_ids: list[str]) -> Iterator[bytes]: ...

    def read_artifact(self, artifact_id: str) -> tuple[ArtifactMeta, bytearray]: ...

    def has_object(self, object_id: str) -> bool: ...

    def write_objects(self, objects: Iterable[GitObject]) -> None: ...

    def write_loose_object(self, obj: GitObject) -> None: ...

    def read_ref(self, name: str) -> str | None: ...

    def update_ref(self, name: str, new: str, old: str | None) -> None: ...
