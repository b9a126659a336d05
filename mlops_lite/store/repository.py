"""The project's git repository: finding it, reading objects, writing packs; refs and identity."""

from __future__ import annotations

import atexit
import os
import tempfile
import weakref
import zlib
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any, Final

from mlops_lite.errors import MissingObjectError, ProjectNotFoundError
from mlops_lite.store.artifacts import ArtifactMeta, read_artifact
from mlops_lite.store.codepin import CodePin, pin_code
from mlops_lite.store.git import cat_objects, git_available
from mlops_lite.store.maintenance import consolidate_packs
from mlops_lite.store.objects import TYPE_NAMES, GitObject, Identity
from mlops_lite.store.packs import entry_header_at, read_blob_inflated, read_stored_into, write_pack
from mlops_lite.store.refs import DiskRefs
from mlops_lite.store.threads import parallel_map

__all__ = ["REPOSITORY_ENV", "GitStore", "find_project_root"]

# Set by ``mlops-lite rerun`` for the interpreter it starts (``execution.reproduction``).
REPOSITORY_ENV: Final = "MLOPS_LITE_REPOSITORY"

# A handful of small objects (a run's "running" commit) cost less as loose
# files than as a pack of their own, and keep the pack count at one per run.
_LOOSE_OBJECTS: Final = 3
_LOOSE_BYTES: Final = 64 * 1024

# Stores still holding open pack files; closed at exit, before dulwich's own
# finalizers would complain while the interpreter shuts down.
_open_stores: weakref.WeakSet[GitStore] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_open_stores):
        store.close()


def find_project_root(start: str | os.PathLike[str] | None = None) -> str:
    """The work tree root of the git repository containing ``start`` (default: cwd)."""
    path = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            raise ProjectNotFoundError(
                f"{os.path.abspath(start or os.getcwd())} is not inside a git repository: "
                "mlops_lite records runs in your project's git repository. "
                "Run `git init` in your project folder first."
            )
        path = parent


def _resolve_git_dirs(root: str) -> tuple[str, str]:
    """``(git_dir, common_dir)``; they differ in linked worktrees."""
    dot_git = os.path.join(root, ".git")
    if os.path.isfile(dot_git):
        with open(dot_git) as f:
            line = f.read().strip()
        git_dir = os.path.normpath(os.path.join(root, line.removeprefix("gitdir:").strip()))
    else:
        git_dir = dot_git
    common_file = os.path.join(git_dir, "commondir")
    if os.path.isfile(common_file):
        with open(common_file) as f:
            common_dir = os.path.normpath(os.path.join(git_dir, f.read().strip()))
    else:
        common_dir = git_dir
    return git_dir, common_dir


class GitStore:
    """Objects and refs of one git repository, as mlops_lite uses them."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.git_dir, self.common_dir = _resolve_git_dirs(root)
        self.pack_dir = os.path.join(self.common_dir, "objects", "pack")
        # Derived, local-only state (indexes, journals): never pushed, rebuildable.
        self.state_dir: str | None = os.path.join(self.common_dir, "mlops-lite")
        self.refs = DiskRefs(self.common_dir)

    @classmethod
    def open(cls, start: str | os.PathLike[str] | None = None) -> GitStore:
        """The store of the repository containing ``start`` (default: the working directory).

        Without ``start``, ``MLOPS_LITE_REPOSITORY`` wins over the working directory:
        ``mlops-lite rerun`` runs a pipeline in a temporary tree of its pinned code,
        and ``Client()`` calls in its steps must read the repository it records into.
        """
        if start is None:
            start = os.environ.get(REPOSITORY_ENV) or None
        return cls(find_project_root(start))

    @cached_property
    def _repo(self) -> Any:  # dulwich.repo.Repo; its typed ids (ObjectID, Ref) are plain bytes here
        from dulwich.repo import Repo

        _open_stores.add(self)
        return Repo(self.root)

    def close(self) -> None:
        """Close the repository's open pack files."""
        if "_repo" in self.__dict__:
            self._repo.close()
            del self.__dict__["_repo"]

    def __enter__(self) -> GitStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # objects -------------------------------------------------------------

    def read_object(self, object_id: str) -> bytes:
        """An object's body; MissingObjectError (saying what to do) when absent."""
        try:
            _, data = self._repo.object_store.get_raw(object_id.encode())
        except KeyError:
            raise MissingObjectError(
                f"git object {object_id} is missing from {self.root}: "
                "fetch the runs again (mlops-lite pull) or rerun the pipeline"
            ) from None
        return bytes(data)

    def read_objects(self, object_ids: list[str]) -> dict[str, bytes]:
        """Many objects at once (``{id: body}``), streamed by git when it is installed."""
        if len(object_ids) > 50 and git_available():
            found = cat_objects(self.root, object_ids)
        else:
            found = {}
        for object_id in object_ids:
            if object_id not in found and self.has_object(object_id):
                found[object_id] = self.read_object(object_id)
        return found

    def read_blobs(self, object_ids: list[str]) -> Iterator[bytes]:
        """Blob contents, in order, read and inflated in parallel.

        Large artifacts are stored as undeltified pack entries at zlib level 0,
        so reading one is a ``pread`` and an inflate that releases the GIL: both
        chunks of a 2-core machine's work can run at once. Anything else (loose,
        deltified) goes through dulwich.
        """
        located = [self._locate_in_pack(object_id) for object_id in object_ids]

        def read(item: tuple[str, tuple[str, int] | None]) -> bytes:
            object_id, location = item
            if location is not None:
                path, offset = location
                fd = os.open(path, os.O_RDONLY)
                try:
                    data = read_blob_inflated(fd, offset)
                finally:
                    os.close(fd)
                if data is not None:
                    return data
            return self.read_object(object_id)

        return parallel_map(read, zip(object_ids, located, strict=True))

    def read_artifact(self, artifact_id: str) -> tuple[ArtifactMeta, bytearray]:
        """An artifact's meta and payload, through the fastest reads this store has."""
        return read_artifact(self.read_object, artifact_id, self.read_blobs, self.read_blobs_into)

    def read_blobs_into(self, object_ids: list[str], target: memoryview) -> bool:
        """Fill ``target`` with the blobs' contents, back to back, reading them in parallel.

        Works for blobs our pack writer stored uncompressed (large artifacts'
        chunks): each is scattered straight into its place in ``target``. Returns
        False, having promised nothing, when any blob is stored another way.
        """
        located = [self._locate_in_pack(object_id) for object_id in object_ids]
        if any(location is None for location in located):
            return False
        spans = []
        position = 0
        for path, offset in located:  # type: ignore[misc]
            fd = os.open(path, os.O_RDONLY)
            try:
                type_num, size, _ = entry_header_at(fd, offset)
            finally:
                os.close(fd)
            if type_num != 3:
                return False
            spans.append((path, offset, position, size))
            position += size
        if position != len(target):
            return False

        def read(span: tuple[str, int, int, int]) -> bool:
            path, offset, start, size = span
            fd = os.open(path, os.O_RDONLY)
            try:
                return read_stored_into(fd, offset, target[start : start + size])
            finally:
                os.close(fd)

        return all(list(parallel_map(read, spans)))

    def _locate_in_pack(self, object_id: str) -> tuple[str, int] | None:
        binary = bytes.fromhex(object_id)
        for pack in self._repo.object_store.packs:
            try:
                offset = pack.index.object_offset(binary)
            except KeyError:
                continue
            return pack._data_path, offset
        return None

    def has_object(self, object_id: str) -> bool:
        """Whether the object is in the repository."""
        return object_id.encode() in self._repo.object_store

    def write_objects(self, objects: Iterable[GitObject]) -> None:
        """Write objects as one pack, or as loose files when they are few and small.

        Nothing is skipped: git tolerates an object stored twice.
        """
        batch = list(objects)
        if len(batch) <= _LOOSE_OBJECTS and all(len(obj.data) < _LOOSE_BYTES for obj in batch):
            for obj in batch:
                self._write_loose_object(obj)
            return
        write_pack(self.pack_dir, batch)

    def pin_code(self) -> CodePin:
        """``HEAD``, or a snapshot commit of the dirty work tree."""
        return pin_code(self.root, self.git_dir, self.identity)

    def maintain(self) -> None:
        """Merge small packs once there are many (see ``maintenance``)."""
        assert self.state_dir is not None
        consolidate_packs(self.root, self.pack_dir, self.state_dir)

    def _write_loose_object(self, obj: GitObject) -> None:
        directory = os.path.join(self.common_dir, "objects", obj.id[:2])
        path = os.path.join(directory, obj.id[2:])
        if os.path.exists(path):
            return
        os.makedirs(directory, exist_ok=True)
        header = b"%s %d\x00" % (TYPE_NAMES[obj.type_num], len(obj.data))
        handle, temporary = tempfile.mkstemp(prefix="tmp_obj_", dir=directory)
        with os.fdopen(handle, "wb") as out:
            out.write(zlib.compress(header + obj.data, 1))
        os.chmod(temporary, 0o444)
        os.replace(temporary, path)

    # identity ------------------------------------------------------------

    @cached_property
    def identity(self) -> Identity:
        """The user's git identity, as git would pick it for a commit."""
        name = os.environ.get("GIT_AUTHOR_NAME")
        email = os.environ.get("GIT_AUTHOR_EMAIL")
        if not (name and email):
            config: Any = self._repo.get_config_stack()
            for key in ("name", "email"):
                try:
                    value = config.get((b"user",), key.encode()).decode()
                except KeyError:
                    continue
                if key == "name":
                    name = name or value
                else:
                    email = email or value
        if not name:
            import getpass

            name = getpass.getuser()
        if not email:
            import socket

            email = f"{name}@{socket.gethostname()}"
        return Identity(_clean_identity_part(name), _clean_identity_part(email))


def _clean_identity_part(value: str) -> str:
    # git refuses these characters inside an identity (fsck: badName / badEmail).
    return value.replace("<", "").replace(">", "").replace("\n", " ").strip() or "unknown"
