"""Artifacts as git trees: a ``meta`` blob and the payload, chunked when large.

An artifact tree is content-addressed: the same value written by the same
materializer gives the same tree id in every run and every clone.

Layout::

    meta            msgpack: materializer, version, type, size, codec, uses_pickle
    data            the payload, when it fits in one chunk
    data/00000 ...  the payload's chunks, in order, when it does not
    data/<files>    a directory artifact (codec ``tree``): the directory's files
                    as they are (a file past CHUNK_MAX as ``<file>.mlops-chunks/``)

Large payloads are cut at content-defined boundaries (so a slightly changed
dataset shares most chunks with the old one) and each chunk stays far below
git hosts' per-file limits (GitHub rejects 100 MB). Compressible payloads are
stored zstd-compressed; incompressible ones (random floats) raw, because zstd
on them costs more time than it saves bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from mlops_lite.core.archive import ArchiveError, decode_files, encode_files
from mlops_lite.errors import StoreError
from mlops_lite.store.objects import MODE_BLOB, MODE_TREE, GitObject, blob, parse_tree, tree
from mlops_lite.store.threads import parallel_map

__all__ = [
    "CHUNK_MAX",
    "CHUNK_MIN",
    "ArtifactMeta",
    "build_artifact",
    "chunk_boundaries",
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


def build_artifact(
    payload: bytes,
    *,
    materializer: str,
    materializer_version: int,
    type_name: str,
    uses_pickle: bool,
    files: bool = False,
) -> tuple[GitObject, list[GitObject]]:
    """Encode ``payload`` as an artifact tree; return the tree and all new objects.

    With ``files``, the payload is a directory's files (``core.archive``) and is
    stored as a git tree of those files, browsable with ``git ls-tree``.
    """
    if files:
        return _build_files_artifact(
            payload,
            materializer=materializer,
            materializer_version=materializer_version,
            type_name=type_name,
            uses_pickle=uses_pickle,
        )
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
) -> tuple[ArtifactMeta, bytearray]:
    """Return the artifact's meta and its payload (writable, assembled in one buffer).

    ``read_many`` reads a list of chunk blobs at once (in parallel, in the store);
    ``read_into`` reads uncompressed chunks straight into the payload buffer.
    """
    entries = parse_tree(read_object(artifact_id))
    meta = ArtifactMeta.decode(read_object(entries["meta"][1]))
    mode, data_id = entries["data"]
    if meta.codec == _FILES_CODEC:
        return meta, _read_files_payload(read_object, artifact_id, data_id, meta.size)
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
        raise StoreError(
            f"artifact {artifact_id} is damaged: expected {meta.size} bytes, found {position}"
        )
    return meta, payload


def read_artifact_meta(read_object: Callable[[str], bytes], artifact_id: str) -> ArtifactMeta:
    """Only the artifact's meta: what deciding how (and whether) to load it needs."""
    entries = parse_tree(read_object(artifact_id))
    meta_entry = entries.get("meta")
    if meta_entry is None or meta_entry[0] != MODE_BLOB:
        from mlops_lite.errors import RecordError

        raise RecordError(f"artifact {artifact_id} has no meta blob: it is not an artifact tree")
    return ArtifactMeta.decode(read_object(meta_entry[1]))


# -- directory artifacts -------------------------------------------------------

_FILES_CODEC = "tree"
# A file larger than one chunk is stored as a tree of chunks under this suffix.
_CHUNKED: Final = ".mlops-chunks"
_MAX_DEPTH: Final = 64


def _build_files_artifact(
    payload: bytes, *, materializer: str, materializer_version: int, type_name: str,
    uses_pickle: bool,
) -> tuple[GitObject, list[GitObject]]:  # fmt: skip
    try:
        files = decode_files(payload)
    except ArchiveError as error:
        raise StoreError(
            f"materializer {materializer!r} wrote an invalid directory: {error}"
        ) from None
    root: dict[str, Any] = {}
    for path, content in files.items():
        *folders, name = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
            if not isinstance(node, dict):
                raise StoreError(f"{path!r} is below a file of the same name; cannot store it")
        if name in node or name.endswith(_CHUNKED):
            raise StoreError(f"cannot store {path!r}: the name is taken or ends with {_CHUNKED!r}")
        node[name] = content
    objects: list[GitObject] = []

    def build(node: dict[str, Any]) -> str:
        entries: dict[str, tuple[int, str]] = {}
        for name, value in node.items():
            if isinstance(value, dict):
                entries[name] = (MODE_TREE, build(value))
            elif len(value) > CHUNK_MAX:
                view = memoryview(value)
                chunks = [blob(view[start:end]) for start, end in chunk_boundaries(value)]
                objects.extend(chunks)
                chunk_tree = tree(
                    {f"{number:05d}": (MODE_BLOB, chunk.id) for number, chunk in enumerate(chunks)}
                )
                objects.append(chunk_tree)
                entries[name + _CHUNKED] = (MODE_TREE, chunk_tree.id)
            else:
                file_blob = blob(value)
                objects.append(file_blob)
                entries[name] = (MODE_BLOB, file_blob.id)
        node_tree = tree(entries)
        objects.append(node_tree)
        return node_tree.id

    data_id = build(root)
    meta = ArtifactMeta(
        materializer, materializer_version, type_name, len(payload), _FILES_CODEC, uses_pickle
    )
    meta_blob = blob(meta.encode())
    artifact_tree = tree({"meta": (MODE_BLOB, meta_blob.id), "data": (MODE_TREE, data_id)})
    return artifact_tree, [meta_blob, *objects, artifact_tree]


def _read_files_payload(
    read_object: Callable[[str], bytes], artifact_id: str, data_id: str, size: int
) -> bytearray:
    files: dict[str, bytes] = {}

    def walk(tree_id: str, prefix: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise StoreError(f"artifact {artifact_id} is damaged: directories nest too deeply")
        for name, (mode, object_id) in parse_tree(read_object(tree_id)).items():
            if mode == MODE_TREE and name.endswith(_CHUNKED):
                chunks = sorted(parse_tree(read_object(object_id)).items())
                files[prefix + name[: -len(_CHUNKED)]] = b"".join(
                    read_object(chunk_id) for _, (_, chunk_id) in chunks
                )
            elif mode == MODE_TREE:
                walk(object_id, f"{prefix}{name}/", depth + 1)
            else:
                files[prefix + name] = read_object(object_id)

    walk(data_id, "", 0)
    try:
        payload = encode_files(files)
    except ArchiveError as error:
        raise StoreError(f"artifact {artifact_id} is damaged: {error}") from None
    if len(payload) != size:
        raise StoreError(
            f"artifact {artifact_id} is damaged: expected {size} bytes, found {len(payload)}"
        )
    return bytearray(payload)
