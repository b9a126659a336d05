"""ZenML's ``fileio`` functions on local paths, for materializers that write under ``self.uri``.

In ZenML these reach any artifact store; here artifacts are written to a local
directory first, so each is the ``os``/``shutil`` operation of the same name.
"""

from __future__ import annotations

import glob as _glob
import os
import shutil
from collections.abc import Iterator
from typing import IO, Any

__all__ = [
    "copy",
    "exists",
    "glob",
    "isdir",
    "listdir",
    "makedirs",
    "mkdir",
    "open",
    "remove",
    "rename",
    "rmtree",
    "size",
    "stat",
    "walk",
]

_open = open


def open(path: str, mode: str = "r") -> IO[Any]:
    """Open a file, as the built-in ``open`` does."""
    return _open(path, mode)


def copy(src: str, dst: str, overwrite: bool = False) -> None:
    """Copy a file; ``FileExistsError`` if ``dst`` exists and ``overwrite`` is false."""
    if not overwrite and os.path.exists(dst):
        raise FileExistsError(f"{dst} exists; pass overwrite=True to replace it")
    shutil.copyfile(src, dst)


def exists(path: str) -> bool:
    """Whether the path exists."""
    return os.path.exists(path)


def glob(pattern: str) -> list[str]:
    """Paths matching a glob pattern."""
    return _glob.glob(pattern)


def isdir(path: str) -> bool:
    """Whether the path is a directory."""
    return os.path.isdir(path)


def listdir(path: str) -> list[str]:
    """The names in a directory."""
    return os.listdir(path)


def makedirs(path: str) -> None:
    """Create a directory and its parents (no error if it exists)."""
    os.makedirs(path, exist_ok=True)


def mkdir(path: str) -> None:
    """Create one directory."""
    os.mkdir(path)


def remove(path: str) -> None:
    """Delete a file."""
    os.remove(path)


def rename(src: str, dst: str, overwrite: bool = False) -> None:
    """Rename a path; ``FileExistsError`` if ``dst`` exists and ``overwrite`` is false."""
    if not overwrite and os.path.exists(dst):
        raise FileExistsError(f"{dst} exists; pass overwrite=True to replace it")
    os.replace(src, dst)


def rmtree(path: str) -> None:
    """Delete a directory and everything in it."""
    shutil.rmtree(path)


def size(path: str) -> int:
    """A file's size in bytes."""
    return os.path.getsize(path)


def stat(path: str) -> os.stat_result:
    """A path's ``os.stat``."""
    return os.stat(path)


def walk(top: str, topdown: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk``."""
    return os.walk(top, topdown=topdown)
