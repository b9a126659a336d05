"""The ``pathlib.path`` materializer: a local file or folder kept as a git tree of its files.

Used by ``register_artifact`` (and by name in ``output_materializers``), never
chosen by type, so steps that return a ``Path`` keep the materializer they had.
The stored tree holds the file or folder under its own name; loading writes it
to a fresh local directory and returns the ``Path`` of the copy.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from mlops_lite.core.archive import decode_files, encode_files
from mlops_lite.errors import MaterializerError
from mlops_lite.materializers.base import Materializer

__all__ = ["PathMaterializer", "read_directory", "write_files"]


def read_directory(
    directory: str, *, prefix: str = "", who: str = "a materializer"
) -> dict[str, bytes]:
    """Every file under ``directory`` by relative POSIX path (symbolic links are refused)."""
    files: dict[str, bytes] = {}
    for folder, subfolders, names in os.walk(directory):
        subfolders.sort()
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                raise MaterializerError(
                    f"{who} found a symbolic link ({path}); only regular files can be stored"
                )
            relative = os.path.relpath(path, directory).replace(os.sep, "/")
            with open(path, "rb") as f:
                files[prefix + relative] = f.read()
    return files


def write_files(files: dict[str, bytes], directory: str) -> None:
    """Write ``{relative path: content}`` under ``directory``."""
    for path, content in files.items():
        target = os.path.join(directory, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(content)


class PathMaterializer(Materializer):
    """A local file or folder, as the files it holds."""

    name: ClassVar[str] = "pathlib.path"
    version: ClassVar[int] = 1
    stores_files: ClassVar[bool] = True

    def save(self, value: Any) -> bytes:
        """The file, or every file of the folder, under the path's own name."""
        path = Path(value)
        if path.is_dir():
            files = read_directory(str(path), prefix=f"{path.name}/", who="register_artifact")
        elif path.is_file():
            files = {path.name: path.read_bytes()}
        else:
            raise MaterializerError(f"{path} is neither a file nor a folder")
        return encode_files(files)

    def load(self, data: bytes | bytearray | memoryview) -> Path:
        """A fresh local copy; the ``Path`` of the file or folder."""
        files = decode_files(data)
        tops = {path.split("/", 1)[0] for path in files}
        if len(tops) != 1:
            raise MaterializerError("a pathlib.path artifact holds more than one top-level entry")
        directory = tempfile.mkdtemp(prefix="mlops-lite-path-")
        write_files(files, directory)
        return Path(directory) / tops.pop()
