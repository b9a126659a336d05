"""Git object encoding (blob, tree, commit) and ids, computed without dulwich.

Building objects here rather than through dulwich's ShaFile classes keeps the
per-step hot path to one SHA-1 and one bytes join per object.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from mlops_lite.errors import RecordError

__all__ = [
    "BLOB",
    "COMMIT",
    "MODE_BLOB",
    "MODE_TREE",
    "TAG",
    "TREE",
    "TYPE_NAMES",
    "GitObject",
    "Identity",
    "ObjectReader",
    "blob",
    "commit",
    "make_object",
    "parse_commit",
    "parse_tree",
    "tree",
]

BLOB = 3
TREE = 2
COMMIT = 1
TAG = 4

TYPE_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob", TAG: b"tag"}

MODE_BLOB = 0o100644
MODE_TREE = 0o040000


class ObjectReader(Protocol):
    """Reads an object's body by id; with ``kind``, refuses an object of another type."""

    def __call__(self, object_id: str, kind: int | None = None, /) -> bytes:
        """The body of ``object_id`` (``MissingObjectError``, ``RecordError``, ``StoreError``)."""
        ...


@dataclass(frozen=True, slots=True)
class GitObject:
    """An encoded git object: its type number, body and hex id."""

    type_num: int
    data: bytes | memoryview  # a view lets a large payload's chunks skip a copy
    id: str


def make_object(type_num: int, data: bytes | memoryview) -> GitObject:
    """The object of a type and body, with its git id."""
    header = b"%s %d\x00" % (TYPE_NAMES[type_num], len(data))
    sha = hashlib.sha1(header, usedforsecurity=False)
    sha.update(data)
    return GitObject(type_num, data, sha.hexdigest())


def blob(data: bytes | memoryview) -> GitObject:
    """A blob object."""
    return make_object(BLOB, data)


def _tree_sort_key(entry: tuple[bytes, int, str]) -> bytes:
    name, mode, _ = entry
    # git sorts a subtree as if its name ended with "/".
    return name + b"/" if mode == MODE_TREE else name


def tree(entries: Mapping[str, tuple[int, str]]) -> GitObject:
    """A tree from ``{name: (mode, hex id)}``; names must be single path components."""
    encoded = sorted(
        ((name.encode(), mode, sha) for name, (mode, sha) in entries.items()), key=_tree_sort_key
    )
    body = b"".join(
        b"%o %s\x00%s" % (mode, name, bytes.fromhex(sha)) for name, mode, sha in encoded
    )
    return make_object(TREE, body)


def parse_tree(data: bytes) -> dict[str, tuple[int, str]]:
    """``{name: (mode, hex id)}`` of a tree object; RecordError when it is damaged."""
    entries: dict[str, tuple[int, str]] = {}
    position = 0
    end = len(data)
    try:
        while position < end:
            space = data.index(b" ", position)
            nul = data.index(b"\x00", space)
            mode = int(data[position:space], 8)
            if nul + 21 > end:
                raise ValueError("truncated entry")
            name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
            entries[name] = (mode, data[nul + 1 : nul + 21].hex())
            position = nul + 21
    except ValueError as error:
        raise RecordError(f"a git tree object is damaged ({error})") from None
    return entries


@dataclass(frozen=True, slots=True)
class Identity:
    """A git author/committer: ``Name <email>``."""

    name: str
    email: str

    def signature(self, timestamp: float, tz_offset_minutes: int) -> bytes:
        """``Name <email> <seconds> <+hhmm>`` as a commit header holds it."""
        sign = "+" if tz_offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(tz_offset_minutes), 60)
        return (
            f"{self.name} <{self.email}> {int(timestamp)} {sign}{hours:02d}{minutes:02d}".encode()
        )


def commit(
    *,
    tree_id: str,
    parents: Iterable[str],
    author: Identity,
    timestamp: float,
    tz_offset_minutes: int,
    message: str,
) -> GitObject:
    """A commit object whose author and committer are both ``author``."""
    signature = author.signature(timestamp, tz_offset_minutes)
    lines = [b"tree " + tree_id.encode()]
    lines.extend(b"parent " + parent.encode() for parent in parents)
    lines.append(b"author " + signature)
    lines.append(b"committer " + signature)
    body = (
        b"\n".join(lines) + b"\n\n" + message.encode() + (b"" if message.endswith("\n") else b"\n")
    )
    return make_object(COMMIT, body)


def parse_commit(data: bytes) -> dict[str, list[bytes]]:
    """Commit headers as ``{b"tree": [...], b"parent": [...], ...}``."""
    # Lines split by one regex pass, keys decoded once per kind: an archive has
    # 100 parents, and a fresh clone parses a thousand archives.
    raw: dict[bytes, list[bytes]] = {}
    for key, value in _HEADER_LINE.findall(data.split(b"\n\n", 1)[0]):
        values = raw.get(key)
        if values is None:
            raw[key] = [value]
        else:
            values.append(value)
    return {key.decode("utf-8", "replace"): values for key, values in raw.items()}


# A header line: its key (continuation lines start with a space: not headers), the rest.
_HEADER_LINE: Final = re.compile(rb"^([^ \n]+) ?([^\n]*)", re.MULTILINE)
