"""The run's pinned code, packed for workers that do not share this checkout (Dask).

A worker must import the project exactly as the run pinned it (the commit, or
the snapshot of a dirty tree), never from whatever copy it happens to have.
The driver packs the pinned commit's tree (a zstd-compressed tar, written from
``git`` objects, not from the work tree) and names the folders of it that were
on its own import path, so a worker can mirror that path: the folder of the
script, ``src/`` of an editable install, the working directory of ``python -m``.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import tempfile
from dataclasses import dataclass

from mlops_lite.store.checkout import materialize_tree

__all__ = ["PinnedCode", "pack_tree", "pinned_code"]


@dataclass(frozen=True, slots=True)
class PinnedCode:
    """The commit a run is pinned to, and where its project sits on the driver's import path."""

    commit: str
    repository: str  # the git work tree holding ``commit``
    # Folders of the tree that were on the driver's sys.path, relative, "." for its top.
    import_paths: tuple[str, ...]


def pinned_code(repository: str, source_root: str, commit: str) -> PinnedCode:
    """``commit``, with the folders of ``source_root`` that this process imports from.

    ``source_root`` is where the pinned files are on this machine: the work tree,
    or the temporary tree a rerun runs in.
    """
    top = os.path.realpath(source_root)
    paths: list[str] = []
    for entry in sys.path:
        location = os.path.realpath(entry or os.getcwd())
        if location != top and not location.startswith(top + os.sep):
            continue
        relative = os.path.relpath(location, top).replace(os.sep, "/")
        if relative not in paths and not relative.startswith("."):
            paths.append(relative)
        elif relative == "." and "." not in paths:
            paths.append(".")
    return PinnedCode(commit, repository, tuple(paths) or (".",))


def pack_tree(code: PinnedCode) -> bytes:
    """Every file of the pinned commit, as a zstd-compressed tar archive."""
    import zstandard

    with tempfile.TemporaryDirectory(prefix="mlops-lite-code-") as scratch:
        materialize_tree(code.repository, code.commit, scratch)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name in sorted(os.listdir(scratch)):
                archive.add(os.path.join(scratch, name), arcname=name)
    return zstandard.ZstdCompressor(level=3).compress(raw.getbuffer())  # type: ignore[no-any-return]
