"""Artifacts as git trees: a ``meta`` blob and the payload, chunked when large.

An artifact tree is content-addressed: the same value written by the same
materializer gives the same tree id in every run and every clone.

Layout::

    meta            msgpack: materializer, version, type, size, codec, uses_pickle
    data            the payload, when it fits in one chunk
    data/00000 ...  the payload's chunks, in order, when it does not
    data/<files>    a directory artifact (codec ``tree``): the directory's files
                    as they are (a file past CHUNK_MAX as ``<file>.mlops-chunks/``)
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
from typing import TYPE_CHECKING, Any, Final

import msgpack

from mlops_lite.core.archive import ArchiveError, decode_files, encode_files, is_clean_path
from mlops_lite.core.hashing import content_digest
from mlops_lite.core.payload import Payload, as_payload
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
# A directory artifact (BaseMaterializer, register_artifact): a git tree of its files.
_FILES_CODEC: Final = "tree"
_CODECS = frozenset({"none", "zstd", _FILES_CODEC})

_COMPRESS_FROM = 16 * 1024
# Compressed chunks are new memory (raw ones are views of the payload): past a
# tenth of the payload's size (at least this), they are handed to ``spill`` to
# be written, in at most ~10 packs.
_SPILL_MIN: Final = 32 * 1024 * 1024
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


def chunk_boundaries(payload: bytes | memoryview | Payload) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` of content-defined chunks covering ``payload``.

    The payload is searched where it lies (never copied whole): the boundaries
    of a ``Payload`` are those of its joined bytes.
    """
    view = as_payload(payload)
    size = len(view)
    start = 0
    while size - start > CHUNK_MAX:
        found = view.find(_BOUNDARY_MARKER, start + CHUNK_MIN, start + CHUNK_MAX)
        end = found + len(_BOUNDARY_MARKER) if found >= 0 else start + CHUNK_MAX
        yield start, end
        start = end
    yield start, size


def _choose_codec(payload: Payload) -> str:
    if len(payload) < _COMPRESS_FROM:
        return "none"
    import zstandard

    middle = len(payload) // 2
    sample = payload.span(max(0, middle - _SAMPLE // 2), min(len(payload), middle + _SAMPLE // 2))
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
    payload: bytes | Payload,
    *,
    materializer: str,
    materializer_version: int,
    type_name: str,
    uses_pickle: bool,
    files: bool = False,
    chunk_store: ChunkStore | None = None,
    spill: Callable[[list[GitObject]], None] | None = None,
) -> tuple[GitObject, list[GitObject]]:
    """Encode ``payload`` as an artifact tree; return the tree and all new objects.

    With ``files``, the payload is a directory's files (``core.archive``) and is
    stored as a git tree of those files, browsable with ``git ls-tree``. With a
    ``chunk_store``, a payload larger than its threshold has its chunks kept
    there and only a pointer to them in git. A ``Payload`` is read where it
    lies: each chunk object holds a view of it, unless it must be compressed.
    Compressed chunks are handed to ``spill`` (to be written) whenever they
    add up to a tenth of the payload (32 MiB at least), and are then not among
    the objects returned: a compressible payload is not held twice either.
    """
    if files:
        return _build_files_artifact(
            payload if isinstance(payload, bytes) else bytes(payload),
            materializer=materializer,
            materializer_version=materializer_version,
            type_name=type_name,
            uses_pickle=uses_pickle,
        )
    data = as_payload(payload)
    codec = _choose_codec(data)
    encode: Callable[[bytes | memoryview], bytes | memoryview]
    if codec == "zstd":
        import zstandard

        def encode(view: bytes | memoryview) -> bytes:
            # A compressor per call: ZstdCompressor objects are not thread-safe.
            return zstandard.ZstdCompressor(level=3).compress(view)
    else:

        def encode(view: bytes | memoryview) -> bytes | memoryview:
            return view

    meta = ArtifactMeta(
        materializer, materializer_version, type_name, len(data), codec, uses_pickle
    )
    meta_blob = blob(meta.encode())
    objects = [meta_blob]
    if chunk_store is not None and len(data) > chunk_store.threshold:
        store = chunk_store

        def keep(span: tuple[int, int]) -> tuple[str, int]:
            stored = encode(data.span(*span))
            return store.keep(stored), len(stored)

        pointer = blob(_encode_pointer(list(parallel_map(keep, chunk_boundaries(data)))))
        entries = {"meta": (MODE_BLOB, meta_blob.id), "chunks": (MODE_BLOB, pointer.id)}
        artifact_tree = tree(entries)
        return artifact_tree, [*objects, pointer, artifact_tree]
    if len(data) <= CHUNK_MAX:
        data_blob = blob(encode(data.span(0, len(data))))
        objects.append(data_blob)
        data_entry = (MODE_BLOB, data_blob.id)
    else:
        spans = chunk_boundaries(data)
        chunks = parallel_map(lambda span: blob(encode(data.span(*span))), spans)
        chunk_entries = {}
        held: list[GitObject] = []
        held_bytes = 0
        spill_at = max(_SPILL_MIN, len(data) // 10)
        for number, chunk in enumerate(chunks):
            chunk_entries[f"{number:05d}"] = (MODE_BLOB, chunk.id)
            if spill is None or codec != "zstd":
                objects.append(chunk)
                continue
            held.append(chunk)
            held_bytes += len(chunk.data)
            if held_bytes >= spill_at:
                spill(held)
                held, held_bytes = [], 0
        objects.extend(held)
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
        layout = _layout(read_object, artifact_id)
        if layout.pointer:
            # Outside git: each chunk fetched (or read from this machine) and verified.
            store = chunk_store() if chunk_store is not None else None
            if store is None:
                raise ConfigError(
                    f"{label} keeps its data in an artifact store, and none is configured "
                    "here: set artifact_store under [tool.mlops-lite] in pyproject.toml, as "
                    "the project that recorded it does"
                )
            pointer = decode_pointer(read_object(layout.blob_ids[0], BLOB), label)
            layout = _Layout(layout.meta_id, [d for d, _ in pointer], None, True, pointer=True)
            read_many, read_into = (lambda digests: store.fetch(digests, label)), None
        return _read_artifact(
            read_object, artifact_id, layout, read_many, read_into, blob_size, digest, label
        )
    except MlopsLiteError as error:
        if where and not str(error).startswith(where):
            raise type(error)(f"{where}: {error}") from None
        raise


def read_artifact_layout(read_object: ObjectReader, artifact_id: str) -> tuple[str, list[str]]:
    """``(meta blob id, payload blob ids in order)`` of an artifact tree; RecordError if malformed.

    The blobs are the payload's chunks or, for a directory artifact, the blobs
    of its files (a large file's chunks in order), files in path order; for an
    artifact whose chunks live in an artifact store, the pointer blob alone.
    """
    layout = _layout(read_object, artifact_id)
    return layout.meta_id, layout.blob_ids


@dataclass(frozen=True, slots=True)
class _Layout:
    """What an artifact tree lists, before its meta says which reading applies."""

    meta_id: str
    blob_ids: list[str]
    # A `data` tree read as a directory: (path, its blob ids); None when `data` is a blob.
    files: list[tuple[str, list[str]]] | None
    # Whether `data` is a blob or a chunk list, as a payload of codec none/zstd needs.
    chunked: bool
    # The chunks live in an artifact store (``blobstore``): ``blob_ids`` is the
    # pointer blob, or once it is read, the chunks' SHA-256 digests.
    pointer: bool = False


def _layout(read_object: ObjectReader, artifact_id: str) -> _Layout:
    entries = parse_tree(read_object(artifact_id, TREE))
    meta_entry = entries.get("meta")
    data_entry = entries.get("data")
    pointer_entry = entries.get("chunks")
    if pointer_entry is not None and data_entry is None and pointer_entry[0] == MODE_BLOB:
        if meta_entry is not None and meta_entry[0] == MODE_BLOB:
            return _Layout(meta_entry[1], [pointer_entry[1]], None, False, pointer=True)
    if meta_entry is None or meta_entry[0] != MODE_BLOB or data_entry is None:
        raise RecordError(f"{artifact_id} is not an artifact tree (it needs `meta` and `data`)")
    mode, data_id = data_entry
    if mode == MODE_BLOB:
        return _Layout(meta_entry[1], [data_id], None, chunked=True)
    if mode != MODE_TREE:
        raise RecordError(f"artifact {artifact_id} has a `data` entry of mode {mode:o}")
    chunks = parse_tree(read_object(data_id, TREE))
    chunk_ids = _chunk_list(chunks)
    if chunk_ids is not None:
        # A directory whose files are all named 00000, 00001, ... reads the same
        # either way: its files are exactly these blobs.
        files = [(name, [object_id]) for name, (_, object_id) in sorted(chunks.items())]
        return _Layout(meta_entry[1], chunk_ids, files, chunked=True)
    files = _directory_files(read_object, artifact_id, chunks)
    blob_ids = [object_id for _, ids in files for object_id in ids]
    return _Layout(meta_entry[1], blob_ids, files, chunked=False)


def _chunk_list(entries: dict[str, tuple[int, str]]) -> list[str] | None:
    """The blob ids of a chunk list (``00000``, ``00001``, ... all blobs), else None."""
    names = sorted(entries)
    if names != [f"{number:05d}" for number in range(len(names))] or any(
        mode != MODE_BLOB for mode, _ in entries.values()
    ):
        return None
    return [entries[name][1] for name in names]


# An artifact tree's id names its content, so what it lists never changes:
# remembered per process, a cache hit seen again costs index look-ups only.
_layouts: dict[str, tuple[str, list[str]]] = {}
_LAYOUTS_KEPT = 4096


def artifact_present(
    read_object: ObjectReader, has_object: Callable[[str], bool], artifact_id: str
) -> bool:
    """Whether every object the artifact needs is in the store (its tree, meta and chunks).

    What a cache hit checks before it is reused: a run whose blobs are gone
    must run again, not be reused and fail later. Reads two small trees at most
    (a directory artifact: one per folder), and every blob of its files.
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
    meta_id, blob_ids = layout
    return has_object(meta_id) and all(has_object(blob_id) for blob_id in blob_ids)


def _read_artifact(
    read_object: ObjectReader,
    artifact_id: str,
    layout: _Layout,
    read_many: Callable[[list[str]], Iterable[bytes]] | None,
    read_into: Callable[[list[str], memoryview], bool] | None,
    blob_size: Callable[[str], int | None] | None,
    digest: str | None,
    label: str,
) -> tuple[ArtifactMeta, bytearray]:
    meta = ArtifactMeta.decode(read_object(layout.meta_id, BLOB), where=f"artifact {artifact_id}")
    if meta.codec == _FILES_CODEC:
        if layout.files is None:
            raise RecordError(f"{label} is a directory artifact whose `data` is not a tree")
        return meta, _read_files_payload(
            layout.files, meta.size, read_object, read_many, digest, label
        )
    if not layout.chunked:
        raise RecordError(f"{label} has a damaged chunk list")
    chunk_ids = layout.blob_ids
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
    meta_id, _ = read_artifact_layout(read_object, artifact_id)
    return ArtifactMeta.decode(read_object(meta_id, BLOB), where=f"artifact {artifact_id}")


# -- directory artifacts -------------------------------------------------------

# A file larger than one chunk is stored as a tree of chunks under this suffix.
_CHUNKED: Final = ".mlops-chunks"
_MAX_DEPTH: Final = 64
# Entries a directory artifact may list: trees can share subtrees, so a few
# small hostile trees could otherwise name an exponential number of files.
_MAX_ENTRIES: Final = 1_000_000


def _build_files_artifact(
    payload: bytes, *, materializer: str, materializer_version: int, type_name: str,
    uses_pickle: bool,
) -> tuple[GitObject, list[GitObject]]:  # fmt: skip
    try:
        files = decode_files(payload)
        canonical = encode_files(files) == payload
    except ArchiveError as error:
        raise StoreError(
            f"materializer {materializer!r} wrote an invalid directory: {error}"
        ) from None
    if not canonical:
        # Reading rebuilds the payload from the tree: it must come out byte for byte.
        raise StoreError(
            f"materializer {materializer!r} wrote a directory payload that is not in "
            "canonical form; build it with mlops_lite.core.archive.encode_files"
        )
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


def _directory_files(
    read_object: ObjectReader, artifact_id: str, top: dict[str, tuple[int, str]]
) -> list[tuple[str, list[str]]]:
    """``[(path, blob ids)]`` of a directory artifact's `data` tree, checked as it is walked.

    Every name must be one clean path component, every entry a file, a folder or
    a chunk list (``<file>.mlops-chunks``); folders nest at most ``_MAX_DEPTH``.
    """
    files: list[tuple[str, list[str]]] = []
    seen_trees: dict[str, dict[str, tuple[int, str]]] = {}
    counted: dict[str, int] = {}

    def entries_of(tree_id: str) -> dict[str, tuple[int, str]]:
        if tree_id not in seen_trees:
            seen_trees[tree_id] = parse_tree(read_object(tree_id, TREE))
        return seen_trees[tree_id]

    def damaged(why: str) -> RecordError:
        return RecordError(f"artifact {artifact_id} is a damaged directory: {why}")

    def count(entries: dict[str, tuple[int, str]], depth: int) -> int:
        """Entries below, each shared folder counted once per appearance (memoized per tree)."""
        if depth > _MAX_DEPTH:
            raise damaged(f"folders nest more than {_MAX_DEPTH} levels")
        total = len(entries)
        for name, (mode, object_id) in entries.items():
            if mode == MODE_TREE and not name.endswith(_CHUNKED):
                if object_id not in counted:
                    counted[object_id] = count(entries_of(object_id), depth + 1)
                total += counted[object_id]
            if total > _MAX_ENTRIES:
                raise damaged(f"it lists more than {_MAX_ENTRIES} entries")
        return total

    # Counted before it is walked: the walk below then costs what the tree is worth.
    count(top, 0)
    pending: list[tuple[dict[str, tuple[int, str]], str, int]] = [(top, "", 0)]
    while pending:
        entries, prefix, depth = pending.pop()
        for name, (mode, object_id) in entries.items():
            if "/" in name or not is_clean_path(name) or not _is_utf8(name):
                raise damaged(f"{prefix + name!r} is not a file name")
            if mode == MODE_TREE and name.endswith(_CHUNKED) and name != _CHUNKED:
                chunk_ids = _chunk_list(entries_of(object_id))
                if chunk_ids is None:
                    raise damaged(f"{prefix + name!r} is not a list of chunks")
                files.append((prefix + name.removesuffix(_CHUNKED), chunk_ids))
            elif mode == MODE_TREE:
                if depth >= _MAX_DEPTH:
                    raise damaged(f"folders nest more than {_MAX_DEPTH} levels")
                pending.append((entries_of(object_id), f"{prefix}{name}/", depth + 1))
            elif mode == MODE_BLOB:
                files.append((prefix + name, [object_id]))
            else:
                raise damaged(f"{prefix + name!r} has mode {mode:o}, not a file or a folder")
    files.sort()
    return files


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # parse_tree keeps undecodable bytes as surrogates
        return False
    return True


def _read_files_payload(
    files: list[tuple[str, list[str]]],
    size: int,
    read_object: ObjectReader,
    read_many: Callable[[list[str]], Iterable[bytes]] | None,
    digest: str | None,
    label: str,
) -> bytearray:
    """A directory artifact's payload, rebuilt from its files and checked.

    Checked against ``digest`` when there is one; otherwise every blob is
    checked against its git id as it is read (``read_many`` must verify).
    Never holds more than the ``size`` the meta declares.
    """
    blob_ids = [object_id for _, ids in files for object_id in ids]
    blobs = iter(
        read_many(blob_ids) if read_many is not None else (read_object(i, BLOB) for i in blob_ids)
    )
    contents: dict[str, bytes] = {}
    held = 0
    for path, ids in files:
        pieces = []
        for _ in ids:
            piece = next(blobs)
            held += len(piece)
            if held > size:
                raise StoreError(
                    f"{label} is damaged: its files hold more than the {size} bytes it declares"
                )
            pieces.append(piece)
        if path in contents:
            raise RecordError(f"{label} is a damaged directory: {path!r} appears twice")
        contents[path] = b"".join(pieces)
    try:
        payload = bytearray(encode_files(contents))
    except (ArchiveError, ValueError) as error:
        raise StoreError(f"{label} is damaged: {error}") from None
    if len(payload) != size:
        raise StoreError(f"{label} is damaged: expected {size} bytes, found {len(payload)}")
    _check_digest(payload, digest, label)
    return payload
