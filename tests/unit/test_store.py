"""The git store: objects and packs that git accepts, refs with compare-and-swap."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO

import pytest

from mlops_lite.errors import ProjectNotFoundError, RefConflictError
from mlops_lite.store import GitStore, find_project_root
from mlops_lite.store import objects as o
from tests.conftest import git


def test_project_root_is_found_upward(project: Path) -> None:
    nested = project / "a" / "b"
    nested.mkdir(parents=True)
    assert find_project_root(nested) == str(project)


def test_outside_a_repository_says_git_init(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match="git init"):
        find_project_root(tmp_path)


def test_pack_written_by_us_passes_git_fsck(project: Path) -> None:
    store = GitStore.open()
    payload = o.blob(os.urandom(100_000))
    small = o.blob(b"hello\n")
    inner = o.tree({"payload": (o.MODE_BLOB, payload.id), "small": (o.MODE_BLOB, small.id)})
    outer = o.tree({"dir": (o.MODE_TREE, inner.id), "a": (o.MODE_BLOB, small.id)})
    head = git(project, "rev-parse", "HEAD")
    commit = o.commit(
        tree_id=outer.id,
        parents=[head],
        author=o.Identity("A", "a@example.com"),
        timestamp=1_700_000_000,
        tz_offset_minutes=-330,
        message="m",
    )
    store.write_objects([payload, small, inner, outer, commit])
    store.refs.compare_and_swap("refs/mlops/test/x", None, commit.id)
    subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True, capture_output=True
    )
    assert git(project, "rev-parse", "refs/mlops/test/x") == commit.id
    assert git(project, "cat-file", "-p", f"{commit.id}:dir/small") == "hello"
    assert store.read_object(payload.id) == payload.data
    assert (
        git(project, "log", "-1", "--format=%an <%ae> %ad", "--date=raw", commit.id)
        == "A <a@example.com> 1700000000 -0530"
    )
    store.close()


def test_object_ids_match_git(project: Path) -> None:
    data = b"some content\n"
    (project / "f.txt").write_bytes(data)
    assert o.blob(data).id == git(project, "hash-object", "f.txt")


def test_ref_compare_and_swap(project: Path) -> None:
    store = GitStore.open()
    head = git(project, "rev-parse", "HEAD")
    store.refs.compare_and_swap("refs/mlops/runs/p/r1", None, head)
    with pytest.raises(RefConflictError):
        store.refs.compare_and_swap("refs/mlops/runs/p/r1", None, head)
    with pytest.raises(RefConflictError):
        store.refs.compare_and_swap("refs/mlops/runs/p/r1", "0" * 40, head)
    assert store.refs.read("refs/mlops/runs/p/r1") == head


def test_ref_in_packed_refs_is_compared(project: Path) -> None:
    store = GitStore.open()
    head = git(project, "rev-parse", "HEAD")
    store.refs.compare_and_swap("refs/mlops/runs/p/r1", None, head)
    git(project, "pack-refs", "--all")
    assert not (project / ".git/refs/mlops/runs/p/r1").exists()
    with pytest.raises(RefConflictError):
        store.refs.compare_and_swap("refs/mlops/runs/p/r1", None, head)
    store.refs.compare_and_swap("refs/mlops/runs/p/r1", head, head)


def test_objects_are_written_as_a_kept_pack_until_released_and_git_reads_them(
    project: Path,
) -> None:
    store = GitStore.open()
    obj = o.blob(b"packed\n")
    keep = store.write_objects([obj], ref="refs/mlops/runs/p/r")
    pack_dir = project / ".git/objects/pack"
    [kept] = pack_dir.glob("*.keep")
    assert (pack_dir / kept.name.replace(".keep", ".pack")).is_file()
    assert "ref refs/mlops/runs/p/r" in kept.read_text()
    assert not (project / ".git/objects" / obj.id[:2]).exists()  # nothing loose for gc to prune
    assert git(project, "cat-file", "-p", obj.id) == "packed"
    keep.release()
    assert not list(pack_dir.glob("*.keep"))


@pytest.mark.parametrize("repack", [False, True])
def test_large_artifact_reads_back_exactly_before_and_after_git_repacks(
    project: Path, repack: bool
) -> None:
    import random

    from mlops_lite.store.artifacts import build_artifact

    payload = random.Random(3).randbytes(19 * 1024 * 1024) + bytes(3 * 1024 * 1024)
    tree, objects = build_artifact(
        payload, materializer="m", materializer_version=1, type_name="t", uses_pickle=False
    )
    store = GitStore.open()
    artifact_keep = store.write_objects(objects)
    head = git(project, "rev-parse", "HEAD")
    holder = o.commit(
        tree_id=o.tree({"artifact": (o.MODE_TREE, tree.id)}).id,
        parents=[head],
        author=o.Identity("A", "a@example.com"),
        timestamp=1,
        tz_offset_minutes=0,
        message="m",
    )
    holder_keep = store.write_objects([o.tree({"artifact": (o.MODE_TREE, tree.id)}), holder])
    store.refs.compare_and_swap("refs/mlops/test/holder", None, holder.id)
    artifact_keep.release()  # reachable now: git may repack it
    holder_keep.release()
    store.close()
    if repack:
        # git recompresses every object: our direct reads must notice and inflate instead.
        git(project, "repack", "-a", "-d", "-F", "-q")
    target = bytearray(len(payload))
    chunk_ids = [
        sha
        for _, (_, sha) in sorted(
            o.parse_tree(
                store.read_object(o.parse_tree(store.read_object(tree.id))["data"][1])
            ).items()
        )
    ]
    assert store.read_blobs_into(chunk_ids, memoryview(target)) is not repack
    meta, data = store.read_artifact(tree.id)
    assert bytes(data) == payload and meta.size == len(payload)
    subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True, capture_output=True
    )
    store.close()


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        65_534,
        65_535,
        65_536,
        2 * 65_535,
        2 * 65_535 + 1,
        8 * 1024 * 1024,
        8 * 1024 * 1024 + 1,
    ],
)
def test_stored_block_framing_round_trips_at_block_edges(project: Path, size: int) -> None:
    import random
    import zlib

    from mlops_lite.store.artifacts import build_artifact
    from mlops_lite.store.packs import _stored_zlib

    payload = random.Random(size).randbytes(size)
    assert zlib.decompress(b"".join(bytes(piece) for piece in _stored_zlib(payload))) == payload
    tree, objects = build_artifact(
        payload, materializer="m", materializer_version=1, type_name="t", uses_pickle=False
    )
    store = GitStore.open()
    store.write_objects(objects)
    store.close()
    meta, data = store.read_artifact(tree.id)
    assert bytes(data) == payload and meta.size == size
    store.close()
    packs = [str(path) for path in (project / ".git/objects/pack").glob("*.idx")]
    if packs:  # a payload of a few bytes is written as loose objects
        subprocess.run(["git", "verify-pack", *packs], cwd=project, check=True, capture_output=True)
    subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True, capture_output=True
    )


def test_compressible_artifact_is_stored_with_zstd_and_reads_back(project: Path) -> None:
    from mlops_lite.store.artifacts import build_artifact

    payload = b"".join(b"row %d, a fairly repetitive line of text\n" % i for i in range(600_000))
    tree, objects = build_artifact(
        payload, materializer="m", materializer_version=1, type_name="t", uses_pickle=False
    )
    assert sum(len(obj.data) for obj in objects) < len(payload) // 3
    store = GitStore.open()
    store.write_objects(objects)
    store.close()
    meta, data = store.read_artifact(tree.id)
    assert meta.codec == "zstd" and bytes(data) == payload
    store.close()


def test_git_streams_many_objects_through_a_pipe_widened_where_the_system_allows(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_lite.store import git as git_module

    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("pipes have a fixed size here")
    if int(Path("/proc/sys/fs/pipe-max-size").read_text()) < 1024 * 1024:
        pytest.skip("pipes may not hold 1 MiB here")
    store = GitStore.open()
    blobs = [o.blob(os.urandom(size)) for size in (0, 1, 70_000, 3_000_000)]
    store.write_objects(blobs).release()
    widths: list[int] = []
    widen = git_module._widen_pipe

    def widened(stream: IO[bytes]) -> None:
        widen(stream)
        widths.append(fcntl.fcntl(stream.fileno(), fcntl.F_GETPIPE_SZ))

    monkeypatch.setattr(git_module, "_widen_pipe", widened)
    ids = [blob.id for blob in blobs]
    found = git_module.cat_objects(str(project), [*ids, "0" * 40, *ids])
    assert found == {blob.id: ("blob", bytes(blob.data)) for blob in blobs}
    # git writes ahead of its reader by up to 1 MiB instead of 64 KiB (Linux's default).
    assert widths == [1024 * 1024]
