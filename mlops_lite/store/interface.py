"""The store contract that recording and reading runs rely on; GitStore and MemoryStore keep it."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mlops_lite.store.artifacts import ArtifactMeta
    from mlops_lite.store.blobstore import ChunkStore
    from mlops_lite.store.codepin import CodePin
    from mlops_lite.store.keeps import Keep
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

    def read_object(self, object_id: str, kind: int | None = None) -> bytes:
        """An object's body; MissingObjectError when absent, RecordError if not of type ``kind``."""

    def read_objects(self, object_ids: list[str]) -> dict[str, GitObject]:
        """Many objects at once, with their types; absent ones are left out."""

    def stream_objects(self, object_ids: list[str]) -> Generator[GitObject, None, None]:
        """Many objects one after the other, in the order asked; absent ones are left out."""

    def read_blobs(self, object_ids: list[str]) -> Iterator[bytes]:
        """Blob bodies in order (in parallel where the store can)."""

    def read_artifact(
        self, artifact_id: str, *, digest: str | None = None, where: str = ""
    ) -> tuple[ArtifactMeta, bytearray]:
        """An artifact's meta and payload, checked against ``digest``; errors name ``where``."""

    def has_object(self, object_id: str) -> bool:
        """Whether the object is present."""

    def write_objects(
        self,
        objects: Iterable[GitObject],
        *,
        ref: str = "",
        while_ref_is: str = "",
        durable: bool = True,
    ) -> Keep:
        """Store objects (durably, unless told otherwise) before any ref may point at them.

        Until the returned keep is released, git's maintenance cannot drop them;
        release it once ``ref`` reaches them. ``while_ref_is`` keeps them for as
        long as ``ref`` points at that commit, even after this process ends.
        """

    def pin_code(self) -> CodePin:
        """The code commit a run started now is pinned to."""

    def maintain(self, *, individual_runs: int = 0) -> None:
        """Housekeeping after a run was recorded: merging packs, folding runs.

        ``individual_runs`` is how many runs have a ref of their own now (the
        oldest are folded into archives once there are many).
        """

    def release_keeps(self, ref: str) -> None:
        """Release the keeps protecting objects written for ``ref`` (by any process)."""

    def sweep_keeps(self) -> None:
        """Remove keeps that writers which died left behind, once nothing needs them."""

    def close(self) -> None:
        """Release open files."""
