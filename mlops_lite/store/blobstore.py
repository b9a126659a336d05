"""Large artifacts outside git: their chunks in a team's artifact store, addressed by SHA-256.

::

    [tool.mlops-lite]
    artifact_store = "s3://team-bucket/mlops"   # file://, sftp://, s3://, gs://: any fsspec URL
    artifact_store_threshold = "1 MiB"          # larger artifacts go there (default 1 MiB)
    artifact_store_options = {endpoint_url = "https://minio.internal:9000"}

An artifact whose payload is larger than the threshold keeps only a pointer in
git (the list of its chunks' digests). Its chunks wait in
``.git/mlops-lite-blobs/`` (not derived state: until pushed they are the only
copy); ``push`` uploads those the store lacks before any ref moves, so a
pushed run never points at data the store does not have, and then moves them
to the user's cache (``MLOPS_LITE_CACHE_DIR``, else ``$XDG_CACHE_HOME`` or
``~/.cache``, under ``mlops-lite/chunks``), which holds only what the store
has and may be deleted at any time. A load reads them from there, and fetches
a missing chunk from the store lazily, into the cache. Every chunk read, from
disk or the store, is checked against its SHA-256: damaged bytes are an error,
never a value. The same chunk is stored once, locally and for the whole team.
Credentials come from the environment and the storage library's own
configuration files, never from this table.
``fsspec`` and the filesystem for the URL's protocol (``s3fs``, ``gcsfs``,
``paramiko`` for sftp) are imported only when a chunk must travel.

Chunks no run needs any more are collected by ``mlops-lite gc --blobs``
(``store.chunk_collection``): ``stored`` lists the store with each chunk's
modification time (``None`` when the backend gives none: such a chunk is never
deleted), ``remove_stored`` deletes, ``cached`` and ``remove_cached`` prune the
cache. A chunk waiting for upload is never deleted: it is the only copy.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from mlops_lite.errors import (
    AuthenticationError,
    ConfigError,
    MissingObjectError,
    RemoteUnreachableError,
    StoreError,
)
from mlops_lite.store.artifact_store_config import (
    DEFAULT_THRESHOLD,
    ArtifactStoreConfig,
    artifact_store_config,
)

__all__ = [
    "CACHE_DIR",
    "DEFAULT_THRESHOLD",
    "ArtifactStoreConfig",
    "ChunkStore",
    "StoredChunk",
    "artifact_store_config",
    "chunk_cache_dir",
    "chunk_digest",
    "read_objects",
    "write_object",
]

CACHE_DIR: Final = "MLOPS_LITE_CACHE_DIR"

_EXTRAS: Final = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "sftp": "sftp", "ssh": "sftp"}
# Object stores replace an object in one PUT; on a filesystem a reader could see half a file.
_ATOMIC_PUT: Final = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_BATCH: Final = 16  # chunks fetched or uploaded at once (~32 MiB)
_DELETE_BATCH: Final = 1000  # S3's DeleteObjects takes at most 1,000 keys
_HEX: Final = frozenset("0123456789abcdef")


def chunk_digest(data: bytes | bytearray | memoryview) -> str:
    """The address of a chunk in the store: its SHA-256, hex (tamper-evident, unlike xxh3)."""
    return hashlib.sha256(data).hexdigest()


def chunk_cache_dir() -> str:
    """Where chunks the store has are cached on this machine, for every clone."""
    base = os.environ.get(CACHE_DIR)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "mlops-lite")
    return os.path.join(base, "chunks")


class ChunkStore:
    """Chunks waiting for upload, the user's cache of uploaded ones, and the team's store."""

    def __init__(self, config: ArtifactStoreConfig, pending_dir: str) -> None:
        self.config = config
        self.threshold = config.threshold
        self.pending_dir = pending_dir
        self.cache_dir = chunk_cache_dir()
        self._filesystem: Any = None
        self._base = ""

    # -- on this machine ------------------------------------------------------

    def _waiting(self, digest: str) -> str:
        return os.path.join(self.pending_dir, digest[:2], digest)

    def _cached(self, digest: str) -> str:
        return os.path.join(self.cache_dir, digest[:2], digest)

    def _local(self, digest: str) -> str | None:
        for path in (self._waiting(digest), self._cached(digest)):
            if os.path.exists(path):
                return path
        return None

    def keep(self, data: bytes | bytearray | memoryview) -> str:
        """Hold a chunk until it is pushed; its digest.

        A chunk already in the cache waits too (a hard link to it): the store
        had it when it was cached, but ``gc --blobs`` may have collected it
        since, and ``push`` uploads exactly what waits here.
        """
        digest = chunk_digest(data)
        waiting = self._waiting(digest)
        if os.path.exists(waiting):
            return digest
        os.makedirs(os.path.dirname(waiting), exist_ok=True)
        try:
            os.link(self._cached(digest), waiting)
        except FileExistsError:
            pass
        except OSError:  # not cached, pruned meanwhile, or another filesystem
            _write_atomically(waiting, data)
        return digest

    def pending(self) -> list[str]:
        """Digests of chunks recorded here and not yet uploaded."""
        try:
            folders = os.listdir(self.pending_dir)
        except FileNotFoundError:
            return []
        return sorted(
            name
            for folder in folders
            if len(folder) == 2
            for name in os.listdir(os.path.join(self.pending_dir, folder))
            if len(name) == 64
        )

    def cached(self) -> list[StoredChunk]:
        """The chunks in this machine's cache (shared by every clone here)."""
        return _chunk_files(self.cache_dir)

    def remove_cached(self, digests: list[str]) -> None:
        """Delete these chunks from the cache (the store, or nobody, still needs them)."""
        for digest in digests:
            try:
                os.unlink(self._cached(digest))
            except FileNotFoundError:
                pass

    def _read_local(self, digest: str, where: str) -> bytes | None:
        path = self._local(digest)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        if chunk_digest(data) != digest:
            raise StoreError(
                f"{where}: chunk {digest} on this machine ({path}) is damaged: its content does "
                f"not match its SHA-256. Delete that file to fetch the chunk again from the "
                f"artifact store at {self.config.url}"
            )
        return data

    # -- reading ------------------------------------------------------------

    def fetch(self, digests: list[str], where: str) -> Iterator[bytes]:
        """The chunks, in order: from the cache, else from the store (then cached); all verified."""
        missing = [d for d in dict.fromkeys(digests) if self._local(d) is None]
        fetched: dict[str, bytes] = {}
        for start in range(0, len(missing), _BATCH):
            fetched.update(self._download(missing[start : start + _BATCH], where))
        for digest in digests:
            data = fetched.pop(digest, None)
            if data is None:
                data = self._read_local(digest, where)
            if data is None:  # vanished from the cache meanwhile
                data = self._download([digest], where)[digest]
            yield data

    def _download(self, digests: list[str], where: str) -> dict[str, bytes]:
        filesystem = self._fs()
        paths = {self._remote(d): d for d in digests}
        try:
            found = read_objects(filesystem, list(paths))
        except Exception as error:
            raise _transfer_error(error, f"{where}: could not read {self.config.url}") from error
        if not isinstance(found, dict):  # one path: some filesystems return the bytes
            found = {next(iter(paths)): found}
        chunks: dict[str, bytes] = {}
        for path, digest in paths.items():
            data = found.get(path) if found.get(path) is not None else found.get(_bare(path))
            if isinstance(data, FileNotFoundError) or data is None:
                raise MissingObjectError(
                    f"{where}: chunk {digest} is neither in this clone's cache nor in the "
                    f"artifact store at {self.config.url}; push the run from the clone that "
                    "recorded it (`mlops-lite push` uploads its chunks first)"
                )
            if isinstance(data, BaseException):
                raise _transfer_error(data, f"{where}: could not read chunk {digest}") from data
            if chunk_digest(data) != digest:
                raise StoreError(
                    f"{where}: chunk {digest} in the artifact store at {self.config.url} is "
                    "damaged: its content does not match its SHA-256; upload it again from a "
                    "clone that has it intact (`mlops-lite push`) or rerun the pipeline"
                )
            _write_atomically(self._cached(digest), data)
            chunks[digest] = bytes(data)
        return chunks

    # -- uploading ------------------------------------------------------------

    def upload_pending(self) -> int:
        """Upload every pending chunk the store lacks; how many were uploaded.

        Raises before returning if one cannot be uploaded: the caller moves no ref then.
        """
        pending = self.pending()
        if not pending:
            return 0
        filesystem = self._fs()
        uploaded = 0
        for start in range(0, len(pending), _BATCH):
            batch = pending[start : start + _BATCH]
            try:
                present = filesystem.exists  # one call each: fsspec has no batch exists
                wanted = [d for d in batch if not present(self._remote(d))]
                for digest in wanted:
                    data = self._read_local(digest, "push")
                    if data is None:
                        raise MissingObjectError(
                            f"chunk {digest} waiting for upload vanished from "
                            f"{self._waiting(digest)}; the runs that use it cannot be pushed. "
                            "Rerun their pipelines to record it again"
                        )
                    self._put(filesystem, digest, data)
                    uploaded += 1
            except (MissingObjectError, StoreError):
                raise
            except Exception as error:
                raise _transfer_error(
                    error, f"could not upload chunks to the artifact store at {self.config.url}"
                ) from error
            for digest in batch:  # the store has them now: from waiting to the cache
                os.makedirs(os.path.dirname(self._cached(digest)), exist_ok=True)
                shutil.move(self._waiting(digest), self._cached(digest))
        return uploaded

    def _put(self, filesystem: Any, digest: str, data: bytes) -> None:
        write_object(filesystem, self._remote(digest), data)

    # -- collecting ------------------------------------------------------------

    def stored(self) -> list[StoredChunk]:
        """Every chunk in the team's store, with its size and when it was last written.

        One recursive listing (fsspec ``find``). The time is the backend's own:
        ``mtime`` (file, sftp, gs), ``LastModified`` (s3), ``updated``; None
        when it gives none.
        """
        filesystem = self._fs()
        try:
            found = filesystem.find(f"{self._base}/chunks", detail=True)
        except FileNotFoundError:
            return []
        except Exception as error:
            raise _transfer_error(
                error, f"could not list the artifact store at {self.config.url}"
            ) from error
        chunks = []
        for path, info in found.items():
            folder, _, name = _bare(path).rstrip("/").rpartition("/")
            if _is_digest(name) and folder.rpartition("/")[2] == name[:2]:
                chunks.append(StoredChunk(name, int(info.get("size") or 0), _modified(info)))
        return chunks

    def remove_stored(self, digests: list[str]) -> None:
        """Delete these chunks from the team's store (a batch request where the backend has one)."""
        if not digests:
            return
        filesystem = self._fs()
        try:
            for start in range(0, len(digests), _DELETE_BATCH):
                batch = digests[start : start + _DELETE_BATCH]
                filesystem.rm([self._remote(digest) for digest in batch])
        except FileNotFoundError:
            pass  # deleted meanwhile: by another gc, say
        except Exception as error:
            raise _transfer_error(
                error, f"could not delete chunks from the artifact store at {self.config.url}"
            ) from error

    # -- the filesystem -------------------------------------------------------

    def _protocol(self) -> str:
        return self.config.url.split("://", 1)[0].lower()

    def _remote(self, digest: str) -> str:
        return f"{self._base}/chunks/{digest[:2]}/{digest}"

    def _fs(self) -> Any:
        if self._filesystem is None:
            extra = _EXTRAS.get(self._protocol(), "store")
            try:
                import fsspec.core
            except ImportError as error:
                raise ConfigError(
                    f"artifact_store {self.config.url!r} needs fsspec: "
                    f"pip install 'mlops-lite[{extra}]'"
                ) from error
            try:
                filesystem, base = fsspec.core.url_to_fs(self.config.url, **self.config.options)
            except ImportError as error:
                raise ConfigError(
                    f"artifact_store {self.config.url!r} needs the filesystem for "
                    f"{self._protocol()}://: pip install 'mlops-lite[{extra}]' ({error})"
                ) from error
            except (ValueError, TypeError) as error:
                raise ConfigError(f"artifact_store {self.config.url!r}: {error}") from error
            self._filesystem, self._base = filesystem, base.rstrip("/")
        return self._filesystem


@dataclass(frozen=True)
class StoredChunk:
    """One chunk where it is kept: its digest, size and when it was written."""

    digest: str
    size: int
    # Seconds since the epoch; None when the store does not say (never deleted then).
    modified: float | None


def _is_digest(name: str) -> bool:
    return len(name) == 64 and set(name) <= _HEX


def _modified(info: Mapping[str, Any]) -> float | None:
    """When a listed object was last written, from the keys fsspec backends use; None if none."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created", "timeCreated"):
        value = info.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:  # a backend's naive time is UTC
                value = value.replace(tzinfo=datetime.UTC)
            return value.timestamp()
    return None


def _chunk_files(folder: str) -> list[StoredChunk]:
    """The chunks under ``folder/<2 hex>/<digest>``, with size and modification time."""
    try:
        folders = [entry for entry in os.scandir(folder) if len(entry.name) == 2]
    except FileNotFoundError:
        return []
    chunks = []
    for entry in folders:
        try:
            files = list(os.scandir(entry.path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for file in files:
            if not _is_digest(file.name) or not file.name.startswith(entry.name):
                continue
            try:
                status = file.stat()
            except FileNotFoundError:
                continue
            chunks.append(StoredChunk(file.name, status.st_size, status.st_mtime))
    return chunks


def write_object(filesystem: Any, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` so that no reader ever sees part of it."""
    if not set(_protocols(filesystem)).isdisjoint(_ATOMIC_PUT):
        filesystem.pipe_file(path, data)
        return
    parent = path.rsplit("/", 1)[0]
    filesystem.makedirs(parent, exist_ok=True)
    partial = f"{parent}/.{path.rsplit('/', 1)[-1]}.{os.getpid()}.partial"
    sftp = getattr(filesystem, "ftp", None)
    if sftp is not None and hasattr(sftp, "open"):
        # paramiko waits for each write's answer (~1 MB/s here) unless pipelined.
        with sftp.open(partial, "wb") as remote:
            remote.set_pipelined(True)
            remote.write(data)
    else:
        filesystem.pipe_file(partial, data)
    filesystem.mv(partial, path)


def _protocols(filesystem: Any) -> tuple[str, ...]:
    protocol = filesystem.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def read_objects(filesystem: Any, paths: list[str]) -> Any:
    """``{path: bytes or the exception}``, concurrently where the filesystem can."""
    sftp = getattr(filesystem, "ftp", None)
    if sftp is None or not hasattr(sftp, "open"):
        return filesystem.cat(paths, on_error="return")
    # paramiko reads one request at a time (~3 MB/s here) unless told to prefetch.
    found: dict[str, Any] = {}
    for path in paths:
        try:
            with sftp.open(path, "rb") as remote:
                remote.prefetch()
                found[path] = remote.read()
        except Exception as error:
            found[path] = FileNotFoundError(path) if isinstance(error, OSError) else error
    return found


def _bare(path: str) -> str:
    return path.split("://", 1)[-1]


def _transfer_error(error: BaseException, what: str) -> Exception:
    """The store's failure as push and pull report a git remote's."""
    if isinstance(error, PermissionError) or "denied" in str(error).lower():
        return AuthenticationError(f"{what}: permission denied ({error})")
    return RemoteUnreachableError(f"{what}: {type(error).__name__}: {error}")


def _write_atomically(path: str, data: bytes | bytearray | memoryview) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
