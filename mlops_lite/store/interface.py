"""The store contract that recording and reading runs rely on; GitStore and MemoryStore keep it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from mlops_lite.store.artifacts import ArtifactMeta
from mlops_lite.store.blobstore import ChunkStore
from mlops_lite.store.codepin import CodePin
from mlops_lite.store.objects import GitObject, Identity
from mlops_lite.store.refs import Refs

__all__ = ["Store"]


class Store(Protocol):
    """Objects, refs and local state of one repository, as mlops_lite uses them."""

    @property
    def identity(self) -> Identity:
        """Who records runs here (the git identity)."""

    @property
    def refs(self) -> Refs:
        """The repository's refs."""

    @property
    def state_dir(self) -> str | None:
        """Where derived local state lives (index, journals); None keeps it in memory."""

    @property
    def chunk_store(self) -> ChunkStore | None:
        """Where artifacts above a size live outside git (``artifact_store``); None: in git."""

    @property
    def root(self) -> str:
        """The project root (the work tree), or a name for a store without one."""

    def read_object(self, object_id: str) -> bytes:
        """An object's body; MissingObjectError when absent."""

    def read_objects(self, object_ids: list[str]) -> dict[str, bytes]:
        """Many objects at once; absent ones are left out."""

    def read_blobs(self, object_ids: list[str]) -> Iterator[bytes]:
        """Blob bodies in order (in parallel where the store can)."""

    def read_artifact(self, artifact_id: str) -> tuple[ArtifactMeta, bytearray]:
        """An artifact's meta and payload."""

    def has_object(self, object_id: str) -> bool:
        """Whether the object is present."""

    def write_objects(self, objects: Iterable[GitObject]) -> None:
        """Store objects durably, before any ref may point at them."""

    def pin_code(self) -> CodePin:
        """The code commit a run started now is pinned to."""

    def maintain(self) -> None:
        """Housekeeping after a run was recorded (merging packs)."""

    def close(self) -> None:
        """Release open files."""
