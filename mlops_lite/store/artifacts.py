"""Artifacts as git trees: a ``meta`` blob and the payload, chunked when large.

An artifact tree is content-addressed: the same value written by the same
materializer gives the same tree id in every run and every clone.

Layout::

    meta            msgpack: materializer, version, type, size, codec, uses_pickle
    data            the payload, when it fits in one chunk
    data/00000 ...  the payload's chunks, in order, when it does not
    chunks          instead of data, with an artifact store (``blobstore``): a pointer
                    listing the SHA-256 and size of each chunk, which live in the store

Large payloads are cut at content-defined boundaries (so a slightly changed
dataset shares most chunks with the old one) and each chunk stays far below
git hosts' per-file limits (GitHub rejects 100 MB). Compressible payloads are
stored zstd-compressed; incompressible ones (random floats) raw, because zstd
on them costs more time than it saves bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import msgpack

from mlops_lite.store.blobstore import ChunkStore
from mlops_lite.store.objects import MODE_BLOB, MODE_TREE, GitObject, blob, parse_tree, tree
from mlops_lite.store.threads import parallel_map

__all__ = [
    "CHUNK_MAX",
    "CHUNK_MIN",
    "ArtifactMeta",
    "build_artifact",
    "chunk_boundaries",
    "decode_pointer",
    "read_artifact",
    "read_artifact_meta",
]

CHUNK_MIN = 2 * 1024 * 1024
CHUNK_MAX = 8 * 1024 * 1024
# A chunk ends at the first occurrence of this marker past CHUNK_MIN: bytes.find
# runs at memory speed, where a rolling hash in Python would crawl at ~10 MB/s.
# In random data the marker appears every ~64 KiB, so chunks are ~2.06 MiB.
_BOUNDARY_MARKER = b"\x9e\x37"

_COMPRESS_FROM = 16 * 1024
_SAMPLE = 256 * 1024
_WORTH_COMPRESSING = 0.85  # store raw unless zstd saves at least 15%


@dataclass(frozen=True, slots=True)
class ArtifactMeta:
    """An artifact's ``meta`` blob: how its payload was written and how to read it back."""

    materializer: str
    materializer_version: int
    type_name: str
    size: int
    codec: str
    uses_pickle: bool

    def encode(self) -> bytes:
        """The ``meta`` blob's bytes."""
        packed: bytes = msgpack.packb(
            [
                self.materializer,
                self.materializer_version,
                self.type_name,
                self.size,
                self.codec,
                self.uses_pickle,
            ],
            use_bin_type=True,
        )
        return packed

    @classmethod
    def decode(cls, data: bytes) -> ArtifactMeta:
        """A ``meta`` blob read back."""
        materializer, version, type_name, size, codec, uses_pickle = msgpack.unpackb(data)
        return cls(materializer, version, type_name, size, codec, uses_pickle)


def chunk_boundaries(payload: bytes | memoryview) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` of content-defined chunks covering ``payload``."""
    view = payload if isinstance(payload, bytes) else bytes(payload)
    size = len(view)
    start = 0
    while size - start > CHUNK_MAX:
        found = view.find(_BOUNDARY_MARKER, start + CHUNK_MIN, start + CHUNK_MAX)
        end = found + len(_BOUNDARY_MARKER) if found >= 0 else start + CHUNK_MAX
        yield start, end
        start = end
    yield start, size


def _choose_codec(payload: bytes) -> str:
    if len(payload) < _COMPRESS_FROM:
        return "none"
    import zstandard

    middle = len(payload) // 2
    sample = payload[max(0, middle - _SAMPLE // 2) : middle + _SAMPLE // 2]
    compressed = zstandard.ZstdCompressor(level=1).compress(sample)
    return "zstd" if len(compressed) < _WORTH_COMPRESSING * len(sample) else "none"


_POINTER = "mlops-lite-chunks"
_POINTER_VERSION = 1


def _encode_pointer(chunks: list[tuple[str, int]]) -> bytes:
    packed: bytes = msgpack.packb(
        [_POINTER, _POINTER_VERSION, [list(chunk) for chunk in chunks]], use_bin_type=True
    )
    return packed


def decode_pointer(data: bytes, where: str = "an artifact") -> list[tuple[str, int]]:
    """``[(sha256, stored size), ...]`` of a ``chunks`` pointer; RecordError if it is not one."""
    from mlops_lite.errors import RecordError

    try:
        kind, version, chunks = msgpack.unpackb(data, raw=False)
        pairs = [(str(digest), int(size)) for digest, size in chunks]
    except Exception:
        raise RecordError(f"{where} has a damaged chunk pointer") from None
    if (
        kind != _POINTER
        or version != _POINTER_VERSION
        or not all(len(digest) == 64 and size >= 0 for digest, size in pairs)
    ):
        raise RecordError(
            f"{where} has a chunk pointer this mlops_lite cannot read ({kind!r} version "
            f"{version!r}); upgrade mlops-lite"
        )
    return pairs


def build_artifact(
    payload: bytes,
    *,
    materializer: str,
    materializer_version: int,
    type_name: str,
    uses_pickle: bool,
    chunk_store: ChunkStore | None = None,
) -> tuple[GitObject, list[GitObject]]:
    """Encode ``payload`` as an artifact tree; return the tree and all new objects.

    With a ``chunk_store``, a payload larger than its threshold has its chunks kept
    there and only a pointer to them in git.
    """
    codec = _choose_codec(payload)
    encode: Callable[[memoryview], bytes | memoryview]
    if codec == "zstd":
        import zstandard

        def encode(view: memoryview) -> bytes:
            # A compressor per call: ZstdCompressor objects are not thread-safe.
            return zstandard.ZstdCompressor(level=3).compress(view)
    else:

        def encode(view: memoryview) -> memoryview:
            return view

    meta = ArtifactMeta(
        materializer, materializer_version, type_name, len(payload), codec, uses_pickle
    )
    meta_blob = blob(meta.encode())
    objects = [meta_blob]
    view = memoryview(payload)
    if chunk_store is not None and len(payload) > chunk_store.threshold:
        store = chunk_store

        def keep(span: tuple[int, int]) -> tuple[str, int]:
            stored = encode(view[span[0] : span[1]])
            return store.keep(stored), len(stored)

        pointer = blob(_encode_pointer(list(parallel_map(keep, chunk_boundaries(payload)))))
        artifact_tree = tree({"meta": (MODE_BLOB, meta_blob.id), "chunks": (MODE_BLOB, pointer.id)})
        return artifact_tree, [*objects, pointer, artifact_tree]
    if len(payload) <= CHUNK_MAX:
        data_blob = blob(encode(view))
        objects.append(data_blob)
        data_entry = (MODE_BLOB, data_blob.id)
    else:
        spans = chunk_boundaries(payload)
        chunks = parallel_map(lambda span: blob(encode(view[span[0] : span[1]])), spans)
        chunk_entries = {}
        for number, chunk in enumerate(chunks):
            objects.append(chunk)
            chunk_entries[f"{number:05d}"] = (MODE_BLOB, chunk.id)
        chunk_tree = tree(chunk_entries)
        objects.append(chunk_tree)
        data_entry = (MODE_TREE, chunk_tree.id)
    artifact_tree = tree({"meta": (MODE_BLOB, meta_blob.id), "data": data_entry})
    objects.append(artifact_tree)
    return artifact_tree, objects


def read_artifact(
    read_object: Callable[[str], bytes],
    artifact_id: str,
    read_many: Callable[[list[str]], Iterable[bytes]] | None = None,
    read_into: Callable[[list[str], memoryview], bool] | None = None,
    chunk_store: ChunkStore | None = None,
) -> tuple[ArtifactMeta, bytearray]:
    """Return the artifact's meta and its payload (writable, assembled in one buffer).

    ``read_many`` reads a list of chunk blobs at once (in parallel, in the store);
    ``read_into`` reads uncompressed chunks straight into the payload buffer;
    ``chunk_store`` fetches (and verifies) chunks an artifact keeps outside git.
    """
    entries = parse_tree(read_object(artifact_id))
    meta = ArtifactMeta.decode(read_object(entries["meta"][1]))
    if "chunks" in entries:
        # Outside git: read through the chunk store, which verifies each chunk's SHA-256.
        pointer = decode_pointer(read_object(entries["chunks"][1]), f"artifact {artifact_id}")
        chunk_ids = [digest for digest, _ in pointer]
        read_many, read_into = _store_reader(chunk_store, f"artifact {artifact_id}"), None
    else:
        mode, data_id = entries["data"]
        if mode == MODE_TREE:
            chunk_ids = [sha for _, (_, sha) in sorted(parse_tree(read_object(data_id)).items())]
        else:
            chunk_ids = [data_id]
    payload = bytearray(meta.size)
    if meta.codec == "none" and read_into is not None and read_into(chunk_ids, memoryview(payload)):
        return meta, payload
    decompress = None
    if meta.codec == "zstd":
        import zstandard

        decompress = zstandard.ZstdDecompressor().decompress
    position = 0
    chunks = read_many(chunk_ids) if read_many is not None else map(read_object, chunk_ids)
    for chunk in chunks:
        if decompress is not None:
            chunk = decompress(chunk)
        payload[position : position + len(chunk)] = chunk
        position += len(chunk)
    if position != meta.size:
        from mlops_lite.errors import StoreError

        raise StoreError(
            f"artifact {artifact_id} is damaged: expected {meta.size} bytes, found {position}"
        )
    return meta, payload


def _store_reader(
    chunk_store: ChunkStore | None, where: str
) -> Callable[[list[str]], Iterable[bytes]]:
    if chunk_store is None:
        from mlops_lite.errors import ConfigError

        raise ConfigError(
            f"{where} keeps its data in an artifact store, and none is configured here: set "
            "artifact_store under [tool.mlops-lite] in pyproject.toml, as the project that "
            "recorded it does"
        )
    store = chunk_store
    return lambda digests: store.fetch(digests, where)


def read_artifact_meta(read_object: Callable[[str], bytes], artifact_id: str) -> ArtifactMeta:
    """Only the artifact's meta: what deciding how (and whether) to load it needs."""
    entries = parse_tree(read_object(artifact_id))
    meta_entry = entries.get("meta")
    if meta_entry is None or meta_entry[0] != MODE_BLOB:
        from mlops_lite.errors import RecordError

        raise RecordError(f"artifact {artifact_id} has no meta blob: it is not an artifact tree")
    return ArtifactMeta.decode(read_object(meta_entry[1]))
