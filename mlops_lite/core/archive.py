"""The files of a directory as one payload, and back: how a directory artifact travels as bytes.

A materializer that writes files into a directory (ZenML's ``BaseMaterializer``
contract) hands them on as this payload; the store turns it into a git tree of
the same files, and back into the same payload when the artifact is read. The
encoding is canonical (paths sorted), so equal directories give equal bytes and
equal artifact ids. Decoding trusts nothing: a path that is absolute, climbs out
(``..``), or is not a clean relative path is an ``ArchiveError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgpack

__all__ = ["ArchiveError", "decode_files", "encode_files", "is_clean_path"]

_MAGIC: Final = "mlops-lite-files/1"


class ArchiveError(ValueError):
    """Bytes that are not a valid files payload, or a path that cannot be stored."""


def is_clean_path(path: str) -> bool:
    """A relative POSIX path of plain components: no ``.``/``..``, no empty part, no NUL."""
    if not path or path.startswith("/") or "\x00" in path or "\\" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def encode_files(files: Mapping[str, bytes]) -> bytes:
    """``{relative path: content}`` as one canonical payload."""
    for path in files:
        if not is_clean_path(path):
            raise ArchiveError(f"cannot store the file path {path!r}: use a clean relative path")
    entries = [[path, bytes(files[path])] for path in sorted(files)]
    packed: bytes = msgpack.packb([_MAGIC, entries], use_bin_type=True)
    return packed


def decode_files(data: bytes | bytearray | memoryview) -> dict[str, bytes]:
    """The files of a payload written by ``encode_files``."""
    try:
        document = msgpack.unpackb(bytes(data), raw=False, strict_map_key=True)
    except (ValueError, msgpack.exceptions.UnpackException) as error:
        raise ArchiveError(f"not a files payload: {error}") from None
    if not (isinstance(document, list) and len(document) == 2 and document[0] == _MAGIC):
        raise ArchiveError("not a files payload (no mlops-lite-files header)")
    entries = document[1]
    if not isinstance(entries, list):
        raise ArchiveError("a files payload holds no list of files")
    files: dict[str, bytes] = {}
    for entry in entries:
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], bytes)
        ):
            raise ArchiveError("a files payload entry is not a (path, content) pair")
        path, content = entry
        if not is_clean_path(path) or path in files:
            raise ArchiveError(f"a files payload holds an invalid or repeated path {path!r}")
        files[path] = content
    return files
