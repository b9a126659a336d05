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
from typing import TYPE_CHECKING, NamedTuple

import msgpack

from mlops_lite.core.hashing import content_digest
from mlops_lite.errors import ConfigError, MlopsLiteError, RecordError, StoreError
from mlops_lite.store.objects import (
    BLOB,
    MODE_BLOB,
    MODE_TREE,
    TREE,
    GitObject,
    ObjectReader,
    blob,
    parse_tree,
    tree,
)
from mlops_lite.store.threads import parallel_map

if TYPE_CHECKING:
    from mlops_lite.store.blobstore import ChunkStore

__all__ = [
    "CHUNK_MAX",
    "CHUNK_MIN",
    "ArtifactLayout",
    "ArtifactMeta",
    "artifact_present",
    "build_artifact",
    "chunk_boundaries",
    "decode_pointer",
    "read_artifact",
    "read_artifact_layout",
    "read_artifact_meta",
]

CHUNK_MIN = 2 * 1024 * 1024
CHUNK_MAX = 8 * 1024 * 1024
# A chunk ends at the first occurrence of this marker past CHUNK_MIN: bytes.find
# runs at memory speed, where a rolling hash in Python would crawl at ~10 MB/s.
# In random data the marker appears every ~64 KiB, so chunks are ~2.06 MiB.
_BOUNDARY_MARKER = b"\x9e\x37"

# A meta blob is a few dozen bytes; a payload is at most what a 64-bit size holds.
_META_MAX = 64 * 1024
_SIZE_MAX = 2**62
_CODECS = frozenset({"none", "zstd"})

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
    def decode(cls, data: bytes, *, where: str = "artifact") -> ArtifactMeta:
        """A ``meta`` blob read back; ``RecordError`` for anything that is not one."""
        if len(data) > _META_MAX:
            raise RecordError(f"{where} has a meta blob of {len(data)} bytes: not an artifact")
        try:
            fields = msgpack.unpackb(data, raw=False, strict_map_key=True)
        except (ValueError, TypeError, msgpack.exceptions.UnpackException):
            raise RecordError(f"{where} has a damaged meta blob") from None
        if type(fields) is not list or len(fields) != 6:
            raise RecordError(f"{where} has a meta blob that is not an artifact's")
        materializer, version, type_name, size, codec, uses_pickle = fields
        if not (
            type(materializer) is str
            and type(version) is int
            and version >= 0
            and type(type_name) is str
            and type(size) is int
            and 0 <= size <= _SIZE_MAX
            and codec in _CODECS
            and type(uses_pickle) is bool
        ):
            raise RecordError(f"{where} has a meta blob with invalid fields")
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
_POINTER_MAX = 16 * 1024 * 1024  # ~200,000 chunks: 400 GB


def _encode_pointer(chunks: list[tuple[str, int]]) -> bytes:
    packed: bytes = msgpack.packb(
        [_POINTER, _POINTER_VERSION, [list(chunk) for chunk in chunks]], use_bin_type=True
    )
    return packed


def decode_pointer(data: bytes, where: str = "an artifact") -> list[tuple[str, int]]:
    """``[(sha256, stored size), ...]`` of a ``chunks`` pointer; RecordError if it is not one."""
    if len(data) > _POINTER_MAX:
        raise RecordError(f"{where} has a chunk pointer of {len(data)} bytes: not a pointer")
    try:
        kind, version, chunks = msgpack.unpackb(data, raw=False)
        pairs = [(str(digest), int(size)) for digest, size in chunks]
    except Exception:
        raise RecordError(f"{where} has a damaged chunk pointer") from None
    if kind != _POINTER or version != _POINTER_VERSION:
        raise RecordError(
            f"{where} has a chunk pointer this mlops_lite cannot read ({kind!r} version "
            f"{version!r}); upgrade mlops-lite"
        )
    if not all(len(d) == 64 and set(d) <= set("0123456789abcdef") and n >= 0 for d, n in pairs):
        raise RecordError(f"{where} has a chunk pointer with invalid entries")
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
        entries = {"meta": (MODE_BLOB, meta_blob.id), "chunks": (MODE_BLOB, pointer.id)}
        artifact_tree = tree(entries)
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
    read_object: ObjectReader,
    artifact_id: str,
    *,
    read_many: Callable[[list[str]], Iterable[bytes]] | None = None,
    read_into: Callable[[list[str], memoryview], bool] | None = None,
    blob_size: Callable[[str], int | None] | None = None,
    digest: str | None = None,
    where: str = "",
    chunk_store: Callable[[], ChunkStore | None] | None = None,
) -> tuple[ArtifactMeta, bytearray]:
    """Return the artifact's meta and its payload (writable, assembled in one buffer).

    The payload is checked against ``digest`` (the xxh3 its output record
    holds): wrong bytes are an error, never a value. Artifacts recorded before
    digests existed are checked chunk by chunk against their git ids instead
    (``read_many`` must then verify what it reads). ``read_many`` reads a list
    of chunk blobs at once (in parallel, in the store); ``read_into`` reads
    uncompressed chunks straight into the payload buffer, once ``blob_size``
    has shown the chunks really add up to the size the meta declares: no
    declared size is trusted for an allocation. Chunks kept outside git come
    from the store ``chunk_store()`` gives (asked only for such an artifact,
    so reading others never loads the store's settings), which checks each
    against its SHA-256. Errors name
    ``where`` (the output, step and run) and are ``mlops_lite.errors`` only.
    """
    label = where or f"artifact {artifact_id}"
    try:
        layout = read_artifact_layout(read_object, artifact_id)
        if layout.pointer:
            # Outside git: each chunk fetched (or read from this machine) and verified.
            store = chunk_store() if chunk_store is not None else None
            if store is None:
                raise ConfigError(
                    f"{label} keeps its data in an artifact store, and none is configured "
                    "here: set artifact_store under [tool.mlops-lite] in pyproject.toml, as "
                    "the project that recorded it does"
                )
            pointer = decode_pointer(read_object(layout.chunk_ids[0], BLOB), label)
            layout = ArtifactLayout(layout.meta_id, [d for d, _ in pointer], pointer=True)
            read_many, read_into = (lambda digests: store.fetch(digests, label)), None
        return _read_artifact(
            read_object, artifact_id, layout, read_many, read_into, blob_size, digest, label
        )
    except MlopsLiteError as error:
        if where and not str(error).startswith(where):
            raise type(error)(f"{where}: {error}") from None
        raise


class ArtifactLayout(NamedTuple):
    """The git objects an artifact tree names: its meta, and its chunks or chunk pointer."""

    meta_id: str
    chunk_ids: list[str]  # in order; the pointer blob alone when ``pointer``
    pointer: bool = False  # the chunks live in an artifact store (``blobstore``)


def read_artifact_layout(read_object: ObjectReader, artifact_id: str) -> ArtifactLayout:
    """The meta and chunk blob ids of an artifact tree, in order; RecordError if malformed."""
    entries = parse_tree(read_object(artifact_id, TREE))
    meta_entry = entries.get("meta")
    data_entry = entries.get("data")
    pointer_entry = entries.get("chunks")
    if pointer_entry is not None and data_entry is None and pointer_entry[0] == MODE_BLOB:
        if meta_entry is not None and meta_entry[0] == MODE_BLOB:
            return ArtifactLayout(meta_entry[1], [pointer_entry[1]], pointer=True)
    if meta_entry is None or meta_entry[0] != MODE_BLOB or data_entry is None:
        raise RecordError(f"{artifact_id} is not an artifact tree (it needs `meta` and `data`)")
    mode, data_id = data_entry
    if mode == MODE_BLOB:
        return ArtifactLayout(meta_entry[1], [data_id])
    if mode != MODE_TREE:
        raise RecordError(f"artifact {artifact_id} has a `data` entry of mode {mode:o}")
    chunks = parse_tree(read_object(data_id, TREE))
    names = sorted(chunks)
    if names != [f"{number:05d}" for number in range(len(names))] or any(
        chunk_mode != MODE_BLOB for chunk_mode, _ in chunks.values()
    ):
        raise RecordError(f"artifact {artifact_id} has a damaged chunk list")
    return ArtifactLayout(meta_entry[1], [chunks[name][1] for name in names])


# An artifact tree's id names its content, so what it lists never changes:
# remembered per process, a cache hit seen again costs index look-ups only.
_layouts: dict[str, ArtifactLayout] = {}
_LAYOUTS_KEPT = 4096


def artifact_present(
    read_object: ObjectReader, has_object: Callable[[str], bool], artifact_id: str
) -> bool:
    """Whether every object the artifact needs is in the store (its tree, meta and chunks).

    What a cache hit checks before it is reused: a run whose blobs are gone
    must run again, not be reused and fail later. Reads two small trees at most.
    Chunks kept in an artifact store are not looked for there (that would take
    the network): their pointer must be here.
    """
    layout = _layouts.get(artifact_id)
    if layout is None:
        try:
            layout = read_artifact_layout(read_object, artifact_id)
        except MlopsLiteError:
            return False
        if len(_layouts) >= _LAYOUTS_KEPT:
            _layouts.clear()
        _layouts[artifact_id] = layout
    elif not has_object(artifact_id):
        return False
    return has_object(layout.meta_id) and all(has_object(chunk) for chunk in layout.chunk_ids)


def _read_artifact(
    read_object: ObjectReader,
    artifact_id: str,
    layout: ArtifactLayout,
    read_many: Callable[[list[str]], Iterable[bytes]] | None,
    read_into: Callable[[list[str], memoryview], bool] | None,
    blob_size: Callable[[str], int | None] | None,
    digest: str | None,
    label: str,
) -> tuple[ArtifactMeta, bytearray]:
    meta_id, chunk_ids, _ = layout
    meta = ArtifactMeta.decode(read_object(meta_id, BLOB), where=f"artifact {artifact_id}")
    if meta.codec == "none" and read_into is not None and blob_size is not None:
        sizes = [blob_size(chunk_id) for chunk_id in chunk_ids]
        if None not in sizes and sum(sizes) == meta.size:  # type: ignore[arg-type]
            payload = bytearray(meta.size)
            if read_into(chunk_ids, memoryview(payload)):
                if digest is None:
                    _check_chunk_ids(chunk_ids, sizes, payload, label)  # type: ignore[arg-type]
                _check_digest(payload, digest, label)
                return meta, payload
    decompress = None
    if meta.codec == "zstd":
        import zstandard

        decompress = zstandard.ZstdDecompressor().decompress
    # Grown chunk by chunk, never past the declared size: a forged meta that
    # declares terabytes costs nothing but a refusal.
    payload = bytearray()
    chunks = read_many(chunk_ids) if read_many is not None else map(read_object, chunk_ids)
    for chunk_id, chunk in zip(chunk_ids, chunks, strict=True):
        piece: bytes | bytearray = chunk
        if decompress is not None:
            piece = _decompress_chunk(decompress, chunk, meta.size - len(payload), chunk_id, label)
        if len(payload) + len(piece) > meta.size:
            raise StoreError(
                f"{label} is damaged: its chunks hold more than the {meta.size} bytes it declares"
            )
        payload += piece
    if len(payload) != meta.size:
        raise StoreError(f"{label} is damaged: expected {meta.size} bytes, found {len(payload)}")
    _check_digest(payload, digest, label)
    return meta, payload


def _decompress_chunk(
    decompress: Callable[..., bytes], chunk: bytes, room: int, chunk_id: str, label: str
) -> bytes:
    """One zstd chunk, inflated only after its frame header's size passed the bounds."""
    import zstandard

    try:
        size = zstandard.frame_content_size(chunk)
        if not 0 <= size <= min(CHUNK_MAX, room):
            raise ValueError(f"a frame of {size} bytes does not fit")
        piece = decompress(chunk)
    except (zstandard.ZstdError, ValueError) as error:
        raise StoreError(
            f"{label} is damaged: chunk {chunk_id} does not decompress ({error})"
        ) from None
    if len(piece) != size:
        raise StoreError(f"{label} is damaged: chunk {chunk_id} is not the size it declares")
    return piece


def _check_digest(payload: bytearray, digest: str | None, label: str) -> None:
    if digest is not None and content_digest(payload) != digest:
        raise StoreError(
            f"{label} is damaged: its content does not match the digest recorded with it; "
            "run `mlops-lite fsck`, then fetch the run again from a clone that has it "
            "(`mlops-lite pull`) or rerun the pipeline"
        )


def _check_chunk_ids(
    chunk_ids: list[str], sizes: list[int], payload: bytearray, label: str
) -> None:
    """For artifacts recorded without a digest: every chunk read must hash to its git id."""
    view = memoryview(payload)
    spans: list[tuple[str, int, int]] = []
    start = 0
    for chunk_id, size in zip(chunk_ids, sizes, strict=True):
        spans.append((chunk_id, start, start + size))
        start += size

    def matches(span: tuple[str, int, int]) -> bool:
        chunk_id, begin, end = span
        return blob(view[begin:end]).id == chunk_id

    if not all(list(parallel_map(matches, spans))):
        raise StoreError(f"{label} is damaged: a chunk's content does not match its git id")


def read_artifact_meta(read_object: ObjectReader, artifact_id: str) -> ArtifactMeta:
    """Only the artifact's meta: what deciding how (and whether) to load it needs."""
    meta_id = read_artifact_layout(read_object, artifact_id).meta_id
    return ArtifactMeta.decode(read_object(meta_id, BLOB), where=f"artifact {artifact_id}")
