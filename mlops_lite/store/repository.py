"""The project's git repository: finding it, reading objects, writing packs; refs and identity."""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
import weakref
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from mlops_lite.core.variables import REPOSITORY_ENV
from mlops_lite.errors import MissingObjectError, ProjectNotFoundError, RecordError
from mlops_lite.store.failures import damaged_object_error, store_os_error
from mlops_lite.store.objects import BLOB, TYPE_NAMES, GitObject, Identity
from mlops_lite.store.refs import DiskRefs, is_sha

if TYPE_CHECKING:
    from mlops_lite.store.artifacts import ArtifactMeta
    from mlops_lite.store.blobstore import ChunkStore
    from mlops_lite.store.codepin import CodePin
    from mlops_lite.store.keeps import Keep, KeepKind

# Opening a store and reading refs is all some commands do (`runs list` from a
# warm index, `push` with nothing new): the pack reader and writer, keeps,
# artifacts, code pins and maintenance are imported by the methods using them.

__all__ = ["GitStore", "find_project_root"]

# Looks at an object before calling it missing or damaged: packs may move
# under a reader (a concurrent `git repack`), so each look rescans them.
_READ_ATTEMPTS: Final = 3

_TYPE_NUMBERS: Final = {name.decode(): number for number, name in TYPE_NAMES.items()}

# Objects this large are looked up before they are written (``_reuse_stored``):
# a large artifact's chunks, most of which an earlier run of a slightly changed
# dataset already stored. Smaller ones cost less to write again than to look up.
_REUSED_FROM: Final = 64 * 1024

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
        self._temporary: str | None = None
        self._packs: list[Any] | None = None  # dulwich Packs, most recently useful first
        self._packs_lock = threading.Lock()

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

    @cached_property
    def chunk_store(self) -> ChunkStore | None:
        """The team's artifact store for large artifacts (``artifact_store``), if configured."""
        from mlops_lite.store.artifact_store_config import artifact_store_config

        config = artifact_store_config(self.root)
        if config is None:
            return None
        from mlops_lite.store.blobstore import ChunkStore

        # Not in state_dir: chunks waiting for push are data, not derived state.
        return ChunkStore(config, os.path.join(self.common_dir, "mlops-lite-blobs"))

    def close(self) -> None:
        """Close the repository's open pack files."""
        self._packs = None
        if "_repo" in self.__dict__:
            try:
                self._repo.close()
            except BufferError:
                pass  # a view of a pack's mmap is still alive: it closes when collected
            del self.__dict__["_repo"]

    def __enter__(self) -> GitStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # objects -------------------------------------------------------------

    def read_object(self, object_id: str, kind: int | None = None) -> bytes:
        """An object's body, checked against its id (and its type, when ``kind`` is given).

        ``MissingObjectError`` when absent; ``StoreError`` when the bytes on disk
        are damaged (a flipped bit in a pack, a truncated file), never a zlib or
        dulwich exception; ``RecordError`` when it is not of type ``kind`` (a ref
        pointing at a blob where a commit belongs).
        """
        type_num, data = self._read_raw(object_id)
        if kind is not None and type_num != kind:
            raise RecordError(
                f"git object {object_id} is a {TYPE_NAMES.get(type_num, b'?').decode()}, "
                f"where a {TYPE_NAMES[kind].decode()} belongs"
            )
        return data

    def _read_raw(self, object_id: str) -> tuple[int, bytes]:
        if not is_sha(object_id):
            raise RecordError(f"{object_id[:60]!r} is not a git object id")
        # Only a description is kept: the exception's frames hold views of the
        # pack's mmap, and the pack could not be closed while they live.
        failure: str | None = None
        # A concurrent `git repack` / `gc` moves objects from loose files into
        # packs and from pack to pack: look again with a fresh pack list before
        # calling anything missing or damaged, as git's reprepare_packed_git does.
        for attempt in range(_READ_ATTEMPTS):
            if attempt:
                self._rescan_packs()
            try:
                found = self._find_in_packs(object_id) if not attempt else None
                if found is not None:
                    type_num, raw = found[0].get_raw(bytes.fromhex(object_id))
                else:  # loose, in an alternate, or in a pack that just appeared
                    type_num, raw = self._repo.object_store.get_raw(object_id.encode())
            except KeyError:
                failure = None
                continue
            except Exception as error:  # zlib.error, checksum and delta errors: damage
                failure = f"{type(error).__name__}: {error}"
                continue
            data = bytes(raw)
            if not _matches(object_id, type_num, data):
                failure = "its content does not match its id"
                continue
            return type_num, data
        if failure is not None:
            raise damaged_object_error(self.root, object_id, failure)
        raise MissingObjectError(
            f"git object {object_id} is missing from {self.root}: "
            "fetch the runs again (mlops-lite pull) or rerun the pipeline"
        )

    def _rescan_packs(self) -> None:
        self._packs = None
        update = getattr(self._repo.object_store, "_update_pack_cache", None)
        if update is not None:
            try:
                update()
            except OSError:
                pass

    def _find_in_packs(self, object_id: str) -> tuple[Any, int] | None:
        """``(pack, offset)`` of a packed object, looking first where the last one was found.

        A run's objects sit together in one pack, and reads come in runs (a
        record, its trees, an artifact's meta and chunks): moving the pack that
        answered to the front makes most look-ups one index search instead of
        one per pack (dulwich tries them in directory order). A pack that
        vanished meanwhile (a concurrent repack) sends the caller to dulwich.
        """
        binary = bytes.fromhex(object_id)
        packs = self._packs
        if packs is None:
            packs = self._packs = list(self._repo.object_store.packs)
        for position, pack in enumerate(packs):
            try:
                offset = pack.index.object_offset(binary)
            except KeyError:
                continue
            except Exception:  # disappeared or damaged: dulwich looks again
                self._packs = None
                return None
            if position:
                with self._packs_lock:
                    if position < len(packs) and packs[position] is pack:
                        packs.insert(0, packs.pop(position))
            return pack, offset
        return None

    def read_objects(self, object_ids: list[str]) -> dict[str, GitObject]:
        """Many objects at once (absent ones left out), streamed by git when it is installed.

        Objects git streams are checked against their ids like single reads.
        """
        return {found.id: found for found in self.stream_objects(object_ids)}

    def stream_objects(self, object_ids: list[str]) -> Generator[GitObject, None, None]:
        """Many objects, in the order asked, as git streams them (absent ones left out).

        A caller working on each as it comes overlaps its work with git's
        reading of the next. Each is checked against its id like a single read.
        """
        from mlops_lite.store.git import cat_objects_streamed, git_available

        streamed: set[str] = set()
        if len(object_ids) > 50 and git_available():
            for object_id, type_name, data in cat_objects_streamed(self.root, object_ids):
                type_num = _TYPE_NUMBERS.get(type_name)
                if type_num is not None and _matches(object_id, type_num, data):
                    streamed.add(object_id)
                    yield GitObject(type_num, data, object_id)
        for object_id in object_ids:
            if object_id not in streamed and self.has_object(object_id):
                type_num, data = self._read_raw(object_id)
                streamed.add(object_id)
                yield GitObject(type_num, data, object_id)

    def read_blobs(self, object_ids: list[str], *, verify: bool = True) -> Iterator[bytes]:
        """Blob contents, in order, read and inflated in parallel.

        Large artifacts are stored as undeltified pack entries at zlib level 0,
        so reading one is a ``pread`` and an inflate that releases the GIL: both
        chunks of a 2-core machine's work can run at once. Anything else (loose,
        deltified, a pack that moved meanwhile) goes through ``read_object``.
        ``verify=False`` skips checking each blob against its id, for callers
        that check the whole content against a digest of their own.
        """
        from mlops_lite.store.threads import parallel_map

        located = [self._locate_in_pack(object_id) for object_id in object_ids]

        def read(item: tuple[str, tuple[str, int] | None]) -> bytes:
            object_id, location = item
            if location is not None:
                data = self._read_located_blob(object_id, location)
                if data is not None and (not verify or _matches(object_id, BLOB, data)):
                    return data
            return self.read_object(object_id, BLOB)

        return parallel_map(read, zip(object_ids, located, strict=True))

    def _read_located_blob(self, object_id: str, location: tuple[str, int]) -> bytes | None:
        from mlops_lite.store.packs import read_blob_inflated

        path, offset = location
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # repacked meanwhile: read_object finds it in its new pack
        try:
            return read_blob_inflated(fd, offset)
        except (zlib.error, ValueError, IndexError, OSError):
            return None  # read_object looks again, and names the damage if it is real
        finally:
            os.close(fd)

    def read_artifact(
        self, artifact_id: str, *, digest: str | None = None, where: str = ""
    ) -> tuple[ArtifactMeta, bytearray]:
        """An artifact's meta and payload, through the fastest reads this store has.

        The payload is checked against ``digest`` (the output record's xxh3), or,
        for artifacts recorded before digests, each chunk against its git id.
        """
        from mlops_lite.store.artifacts import read_artifact

        return read_artifact(
            self.read_object,
            artifact_id,
            read_many=lambda ids: self.read_blobs(ids, verify=digest is None),
            read_into=self.read_blobs_into,
            blob_size=self._blob_size,
            digest=digest,
            where=where,
            chunk_store=lambda: self.chunk_store,
        )

    def read_blobs_into(self, object_ids: list[str], target: memoryview) -> bool:
        """Fill ``target`` with the blobs' contents, back to back, reading them in parallel.

        Works for blobs our pack writer stored uncompressed (large artifacts'
        chunks): each is scattered straight into its place in ``target``. Returns
        False, having promised nothing, when any blob is stored another way or
        its pack moved meanwhile. The caller checks the content.
        """
        from mlops_lite.store.packs import read_stored_into
        from mlops_lite.store.threads import parallel_map

        located = [self._locate_in_pack(object_id) for object_id in object_ids]
        if any(location is None for location in located):
            return False
        spans = []
        position = 0
        for path, offset in located:  # type: ignore[misc]
            entry = self._entry_at(path, offset)
            if entry is None or entry[0] != BLOB:
                return False
            spans.append((path, offset, position, entry[1]))
            position += entry[1]
        if position != len(target):
            return False

        def read(span: tuple[str, int, int, int]) -> bool:
            path, offset, start, size = span
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return False
            try:
                return read_stored_into(fd, offset, target[start : start + size])
            except (ValueError, IndexError, OSError):
                return False
            finally:
                os.close(fd)

        return all(list(parallel_map(read, spans)))

    def _blob_size(self, object_id: str) -> int | None:
        """A packed, undeltified blob's size from its pack entry header, without reading it."""
        location = self._locate_in_pack(object_id)
        if location is None:
            return None
        entry = self._entry_at(*location)
        return entry[1] if entry is not None and entry[0] == BLOB else None

    @staticmethod
    def _entry_at(path: str, offset: int) -> tuple[int, int] | None:
        from mlops_lite.store.packs import entry_header_at

        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            type_num, size, _ = entry_header_at(fd, offset)
        except (ValueError, IndexError, OSError):
            return None
        finally:
            os.close(fd)
        return type_num, size

    def _locate_in_pack(self, object_id: str) -> tuple[str, int] | None:
        if not is_sha(object_id):
            return None
        found = self._find_in_packs(object_id)
        if found is None:
            self._rescan_packs()  # a pack written since the list was made
            found = self._find_in_packs(object_id)
        return (found[0]._data_path, found[1]) if found is not None else None

    def has_object(self, object_id: str) -> bool:
        """Whether the object is in the repository."""
        if not is_sha(object_id):
            return False
        if self._find_in_packs(object_id) is not None:
            return True
        store = self._repo.object_store
        for attempt in range(_READ_ATTEMPTS):
            if attempt:
                self._rescan_packs()
            try:
                if object_id.encode() in store:
                    return True
            except Exception:  # a pack vanished while we looked: look again
                continue
        return False

    def write_objects(
        self,
        objects: Iterable[GitObject],
        *,
        ref: str = "",
        while_ref_is: str = "",
        durable: bool = True,
    ) -> Keep:
        """Write objects as one pack, kept from git's maintenance until ``release()``.

        ``ref`` names the ref that will reach the objects (it is written in the
        keep, so that a keep left by a dead writer can be swept); with
        ``while_ref_is``, the keep protects a ``running`` commit for as long as
        ``ref`` points at it, even after this process is gone. ``durable``
        fsyncs the pack before returning. Large objects already in a pack are
        not written again (``_reuse_stored``); that pack is kept as well.
        """
        from mlops_lite.store.keeps import Keep, combine_keeps, write_keep
        from mlops_lite.store.packs import write_pack

        kind: KeepKind = "running" if while_ref_is else "in-flight"
        keeps: list[Keep] = []
        try:
            os.makedirs(self.pack_dir, exist_ok=True)
            remaining = self._reuse_stored(
                objects, keeps, lambda path: write_keep(path, kind, ref, while_ref_is)
            )
            keep = write_pack(
                self.pack_dir,
                remaining,
                temp_dir=self._temp_dir(),
                protect=lambda path: write_keep(path, kind, ref, while_ref_is),
                durable=durable,
            )
        except BaseException as error:
            for borrowed in keeps:
                borrowed.release()
            if isinstance(error, OSError):
                raise store_os_error(f"write git objects to {self.root}", error) from None
            raise
        if keep is not None:
            keeps.append(keep)
        return combine_keeps(keeps) if keeps else Keep(None, b"")

    def _reuse_stored(
        self, objects: Iterable[GitObject], keeps: list[Keep], protect: Callable[[str], Keep]
    ) -> list[GitObject]:
        """``objects`` less the large ones a pack of the repository already holds.

        A run whose dataset changed by 1% then writes ~1% of it, not all of it
        again for a later ``git gc`` to drop. Such an object may be unreachable
        (left by a failed or deleted run), and then ``git gc`` could drop it
        before this run's ref names it. So, as for the pack we write, the pack
        holding it gets a ``.keep`` (``protect``, added to ``keeps``), released
        with ours once the ref is written. It is reused only if that keep is
        ours, or one this writer already holds for the same ref (another
        writer's may go at any moment), and the pack is still there once kept
        (a repack that began before it may have moved it; the object is then
        written). A ``git gc --prune=now`` that had already listed the packs
        before the keep appeared could still drop it, as git documents for any
        concurrent writer. Loose objects are always written again.
        """
        remaining: list[GitObject] = []
        by_pack: dict[str, list[GitObject]] = {}
        objects = list(objects)
        if any(len(obj.data) >= _REUSED_FROM for obj in objects):
            self._rescan_packs()  # packs written since the list was made: this run's own too
        for obj in objects:
            found = self._find_in_packs(obj.id) if len(obj.data) >= _REUSED_FROM else None
            if found is None:
                remaining.append(obj)
            else:
                by_pack.setdefault(found[0]._data_path.removesuffix(".pack"), []).append(obj)
        for base, stored in by_pack.items():
            keep = protect(base + ".keep")
            if keep.path is None and not keep.held_here:
                remaining.extend(stored)  # kept by another writer, or by git for a moment
            elif not (os.path.exists(base + ".pack") and os.path.exists(base + ".idx")):
                keep.release()
                remaining.extend(stored)
            elif keep.path is not None:
                keeps.append(keep)
        return remaining

    def _temp_dir(self) -> str:
        """Where packs are written before they appear: out of reach of ``git gc``'s tmp sweep.

        It must be on the same file system as the pack directory (a rename
        publishes the pack); when it is not, the pack directory itself is used.
        """
        if self._temporary is None:
            candidate = os.path.join(self.common_dir, "mlops-lite", "tmp")
            os.makedirs(candidate, exist_ok=True)
            same_device = os.stat(candidate).st_dev == os.stat(self.pack_dir).st_dev
            self._temporary = candidate if same_device else self.pack_dir
        return self._temporary

    def pin_code(self) -> CodePin:
        """``HEAD``, or a snapshot commit of the dirty work tree."""
        from mlops_lite.store.codepin import pin_code

        return pin_code(self.root, self.git_dir, self.identity)

    def maintain(self, *, individual_runs: int = 0) -> None:
        """After a run: set the repository's git config once; merge packs and fold runs when due.

        The merging and folding run in a process of their own (``background``),
        so the run that made them due does not wait for them.
        """
        from mlops_lite.store.background import maintenance_needed, start_maintenance
        from mlops_lite.store.maintenance import configure_repository

        assert self.state_dir is not None
        configure_repository(self.root, self.state_dir)

        if maintenance_needed(self.pack_dir, individual_runs):
            start_maintenance(self.root, self.state_dir)

    def release_keeps(self, ref: str) -> None:
        """Release every keep protecting objects of ``ref`` (its run was recovered)."""
        from mlops_lite.store.keeps import release_keeps_of

        release_keeps_of(self.pack_dir, ref)

    def sweep_keeps(self) -> None:
        """Remove keeps (and temporary files) that writers which died here left behind."""
        from mlops_lite.store.journal import journal_exists
        from mlops_lite.store.keeps import sweep_stale_keeps
        from mlops_lite.store.maintenance import remove_stale_temporaries

        assert self.state_dir is not None
        state_dir = self.state_dir
        sweep_stale_keeps(self.pack_dir, self.refs.read, lambda ref: journal_exists(state_dir, ref))
        remove_stale_temporaries(os.path.join(state_dir, "tmp"))

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


def _matches(object_id: str, type_num: int, data: bytes) -> bool:
    """Whether ``data`` is the body of the object ``object_id`` names (git's own check)."""
    type_name = TYPE_NAMES.get(type_num)
    if type_name is None:
        return False
    sha = hashlib.sha1(b"%s %d\x00" % (type_name, len(data)), usedforsecurity=False)
    sha.update(data)
    return sha.hexdigest() == object_id
