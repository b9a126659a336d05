"""What the driver ships to Dask workers: the pinned tree, and where it sits on the import path."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from mlops_lite.execution.shipping import PinnedCode, pack_tree, pinned_code
from tests.conftest import git


def test_import_paths_mirror_the_folders_of_the_checkout_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    elsewhere = tmp_path.parent
    monkeypatch.setattr(
        sys,
        "path",
        [str(tmp_path / "src"), str(tmp_path / ".venv" / "lib"), str(elsewhere), str(tmp_path)],
    )
    code = pinned_code(str(tmp_path), str(tmp_path), "c0ffee")
    assert code == PinnedCode("c0ffee", str(tmp_path), ("src", "."))
    monkeypatch.setattr(sys, "path", [str(elsewhere)])
    assert pinned_code(str(tmp_path), str(tmp_path), "c0ffee").import_paths == (".",)


def test_the_tree_shipped_is_the_commits_not_the_work_tree(project: Path) -> None:
    (project / "pkg").mkdir()
    (project / "pkg" / "__init__.py").write_text("VERSION = 1\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "pkg")
    (project / "pkg" / "__init__.py").write_text("VERSION = 2  # not committed\n")
    (project / "untracked.py").write_text("")
    archive = pack_tree(PinnedCode(git(project, "rev-parse", "HEAD"), str(project), (".",)))
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(archive))
    with tarfile.open(fileobj=raw, mode="r|") as tree:
        files = {
            member.name: tree.extractfile(member).read()  # type: ignore[union-attr]
            for member in tree
            if member.isfile()
        }
    assert files == {"README.md": b"project\n", "pkg/__init__.py": b"VERSION = 1\n"}
