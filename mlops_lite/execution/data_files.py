"""Data files as step dependencies: the files a step reads, seen while it runs, and their ids.

A step that reads ``data/raw.csv`` computes something else when the file
changes, though its code and parameters did not (issue 10). So while a step
runs, an audit hook (``sys.addaudithook``, event ``open``) notes every file
inside the work tree it opens for reading, in this process or in the worker
that runs it; when the step ends each is hashed (xxh3-128) and recorded with
the step. A cache hit needs every recorded file to hold the same content now.

The hook is installed the first time a step runs in a process and cannot be
removed (Python has no way to); outside a step it returns after one string
comparison and one context-variable read. What it cannot see: files read by
subprocesses, and by C code that does not go through Python's ``open`` or
``os.open`` (pyarrow's readers, for example). Declare those with
``@step(data=["path", "dir/"])``: declared paths are hashed before the cache
look-up and are part of the cache key.

Python sources (``.py``, ``.pyc``) are left out: they are code, fingerprinted as such.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from stat import S_ISREG
from typing import Any, Final

import xxhash

from mlops_lite.errors import DefinitionError

__all__ = [
    "FileReads",
    "ReadTracking",
    "changed_files",
    "content_id",
    "declared_content_ids",
    "track_reads",
]

_CHUNK: Final = 1 << 20
_CODE_SUFFIXES: Final = (".py", ".pyc", ".pyo")
# A stat is trusted to mean "unchanged" only when the file was last modified this
# long before it was hashed: git's "racily clean" problem (a write within the
# timestamp's granularity after the hash would otherwise go unseen).
_RACY_SECONDS: Final = 2.0


class FileReads:
    """The files one running step opened for reading, under one work tree."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._prefixes = _prefixes(root)
        self.paths: set[str] = set()

    def note(self, path: str) -> None:
        """Keep ``path`` (absolute) when it is inside the work tree and not code or git's own."""
        if path.startswith(self._prefixes) and not path.endswith(_CODE_SUFFIXES):
            self.paths.add(path)

    def content_ids(self) -> dict[str, str]:
        """``{path relative to the work tree (posix): content id}`` of the files still there."""
        found: dict[str, str] = {}
        for path in sorted(self.paths):
            prefix = next(p for p in self._prefixes if path.startswith(p))
            relative = path[len(prefix) :].replace(os.sep, "/")
            if relative.startswith(".git/"):
                continue  # git's own files (mlops_lite reads them too)
            digest = content_id(path)
            if digest is not None:
                found[relative] = digest
        return found


@lru_cache(maxsize=16)
def _prefixes(root: str) -> tuple[str, ...]:
    """``root/`` as given and as resolved (a symlinked /tmp): a path may start with either."""
    given = os.path.join(os.path.abspath(root), "")
    return tuple(dict.fromkeys((given, os.path.join(os.path.realpath(root), ""))))


_active: contextvars.ContextVar[FileReads | None] = contextvars.ContextVar(
    "mlops_lite_file_reads", default=None
)
# The one step tracking in this process, if only one is: threads that a step
# starts itself begin with an empty context, and still read for it.
_sole: list[FileReads] = []
_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open":
        return
    reads = _active.get()
    if reads is None:
        if len(_sole) != 1:
            return
        reads = _sole[0]
    path, mode, flags = args
    if isinstance(path, int):
        return  # an open file descriptor: its path was seen when it was opened
    if mode is None:  # os.open: decide by the flags
        if flags & os.O_ACCMODE == os.O_WRONLY or flags & os.O_TRUNC:
            return
    elif "r" not in mode:
        return
    try:
        reads.note(os.path.abspath(os.fsdecode(path)))
    except (TypeError, ValueError):
        return


def track_reads(root: str) -> ReadTracking:
    """The files under ``root`` this step opens for reading, noted inside a ``with`` block."""
    return ReadTracking(root)


class ReadTracking:
    """Notes the files under ``root`` that this step (this context) opens for reading.

    A class, not a generator: entered once per step, it must cost microseconds.
    """

    def __init__(self, root: str) -> None:
        _install_hook()
        self.reads = FileReads(root)

    def __enter__(self) -> FileReads:
        self._token = _active.set(self.reads)
        _sole.append(self.reads)  # list operations are atomic under the GIL
        return self.reads

    def __exit__(self, *exc: object) -> None:
        _sole.remove(self.reads)
        _active.reset(self._token)


def _install_hook() -> None:
    global _hook_installed
    if not _hook_installed:
        with _lock:
            if not _hook_installed:
                sys.addaudithook(_audit)
                _hook_installed = True


# content ids ------------------------------------------------------------------------

_memo: dict[str, tuple[tuple[int, int, int], str]] = {}


def content_id(path: str) -> str | None:
    """The xxh3-128 hex digest of a file's bytes; None when it is not a readable file.

    Memoized by (size, mtime, inode) once the file is older than a racy window.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not S_ISREG(stat.st_mode):
        return None
    signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    known = _memo.get(path)
    if known is not None and known[0] == signature:
        return known[1]
    hasher = xxhash.xxh3_128()
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(_CHUNK):
                hasher.update(chunk)
    except OSError:
        return None
    digest = hasher.hexdigest()
    if time.time() - stat.st_mtime > _RACY_SECONDS:
        _memo[path] = (signature, digest)
    return digest


def changed_files(root: str, recorded: Mapping[str, str]) -> list[str]:
    """The recorded files (relative to ``root``) whose content is not the recorded one now."""
    return [
        relative
        for relative, digest in recorded.items()
        if content_id(os.path.join(root, *relative.split("/"))) != digest
    ]


def declared_content_ids(root: str, declared: Iterable[str], step_name: str) -> dict[str, str]:
    """Content ids of the files a step declares with ``@step(data=[...])`` (folders: every file).

    A declared path that does not exist is an error: the step would run on
    missing data, and its cache could never tell.
    """
    found: dict[str, str] = {}
    for entry in declared:
        path = entry if os.path.isabs(entry) else os.path.join(root, entry)
        if os.path.isdir(path):
            for folder, subfolders, files in os.walk(path):
                subfolders[:] = sorted(d for d in subfolders if d != ".git")
                for name in sorted(files):
                    _add(found, root, os.path.join(folder, name))
        elif os.path.isfile(path):
            _add(found, root, path)
        else:
            raise DefinitionError(
                f"step {step_name!r} declares data {entry!r}, which does not exist under "
                f"{root}; create it, or fix the path in @step(data=[...]) (relative to the "
                "project root)"
            )
    return found


def _add(found: dict[str, str], root: str, path: str) -> None:
    digest = content_id(path)
    if digest is not None:
        found[_relative(root, path) or os.path.abspath(path)] = digest


def _relative(root: str, path: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators; None when it is outside."""
    for base in (root, os.path.realpath(root)):
        relative = os.path.relpath(path, base)
        if not relative.startswith(os.pardir):
            return relative.replace(os.sep, "/")
    return None
