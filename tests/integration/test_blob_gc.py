"""``mlops-lite gc --blobs``: unused chunks leave the artifact store, a team's data stays.

Real stores (a file:// folder, S3 through moto's server, GCS through
gcp-storage-emulator, sftp through the tests' sshd), real remotes (a bare
repository), every command in its own process as a team would run them.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git, run_script
from tests.integration.gcs_server import GcsServer
from tests.integration.gcs_server import gcs_server as gcs_server  # a fixture
from tests.integration.remotes import SshServer
from tests.integration.remotes import sshd as sshd  # a fixture
from tests.integration.stores import S3Server
from tests.integration.stores import s3_server as s3_server  # a fixture
from tests.integration.test_artifact_store import (
    alice_project,
    big_sha256,
    load_in,
    mlops_lite,
    teammate_clone,
)

pytest.importorskip("fsspec")

MIB = str(1024 * 1024)


def gc(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_lite", "gc", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def folder_chunks(folder: Path) -> Callable[[], set[str]]:
    return lambda: {path.name for path in folder.rglob("chunks/*/*") if len(path.name) == 64}


def run_as(clone: Path, cache: Path, *args: str) -> None:
    """A pipeline run in ``clone`` with its own chunk cache and no step cache (new data)."""
    subprocess.run(
        [sys.executable, "large.py", *args], cwd=clone, check=True, capture_output=True,
        env={**os.environ, "MLOPS_LITE_CACHE_DIR": str(cache), "MLOPS_LITE_ENABLE_CACHE": "0"},
        timeout=120,
    )  # fmt: skip


@pytest.fixture(params=["file", "s3", "gs", "sftp"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Callable[[], set[str]]]:
    """``(artifact_store URL, the digests it holds)`` for each kind of store."""
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(tmp_path / "alice-cache"))
    if request.param == "file":
        folder = tmp_path / "shared-store"
        return f"file://{folder}", folder_chunks(folder)
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        bucket = server.new_bucket()
        return f"s3://{bucket}/team", lambda: {
            key.rsplit("/", 1)[-1] for key in server.keys(bucket) if "/chunks/" in key
        }
    if request.param == "gs":
        gcs: GcsServer = request.getfixturevalue("gcs_server")
        for name, value in gcs.environment().items():
            monkeypatch.setenv(name, value)
        bucket = gcs.new_bucket()
        return f"gs://{bucket}/team", lambda: {
            key.rsplit("/", 1)[-1] for key in gcs.keys(bucket) if "/chunks/" in key
        }
    pytest.importorskip("paramiko")
    ssh: SshServer = request.getfixturevalue("sshd")
    ssh_dir = Path(os.environ["HOME"]) / ".ssh"
    ssh_dir.mkdir(exist_ok=True)
    shutil.copy(ssh.key_dir / "id_ed25519", ssh_dir / "id_ed25519")
    folder = tmp_path / "sftp-store"
    return f"sftp://{getpass.getuser()}@127.0.0.1:{ssh.port}{folder}", folder_chunks(folder)


@pytest.mark.slow  # ~10-15 s per store: three clones' runs, pushes and loads; run by default
def test_gc_blobs_deletes_a_deleted_runs_chunks_and_keeps_every_other_runs(
    project: Path, tmp_path: Path, store: tuple[str, Callable[[], set[str]]]
) -> None:
    url, chunks_in_store = store
    origin = alice_project(project, url, threshold="64 KiB")
    run_script(project, "large.py", MIB, "1")
    mlops_lite(project, "push")
    old = chunks_in_store()
    run_as(project, tmp_path / "alice-cache", MIB, "2")  # reuses nothing of the first run
    mlops_lite(project, "push")
    kept_run = chunks_in_store() - old
    kept_sha = big_sha256(project)
    assert old and kept_run
    # Bob pushes a run Alice never pulls: only the remote's refs name his chunks.
    bob = teammate_clone(origin, tmp_path / "bob")
    run_as(bob, tmp_path / "bob-cache", MIB, "3")
    mlops_lite(bob, "push", env={"MLOPS_LITE_CACHE_DIR": str(tmp_path / "bob-cache")})
    bobs = chunks_in_store() - old - kept_run
    assert bobs

    # --remote: deleted for the team (a run still on the remote keeps its chunks).
    dry = gc(project, "--keep-last", "1", "--remote", "--blobs", "--blob-grace", "0s", "-n")
    assert dry.returncode == 0, dry.stderr
    assert f"would delete {len(old)} of {len(old | kept_run | bobs)} chunks" in dry.stdout
    assert chunks_in_store() == old | kept_run | bobs  # a dry run deletes nothing

    done = gc(project, "--keep-last", "1", "--remote", "--blobs", "--blob-grace", "0s")
    assert done.returncode == 0, done.stderr
    assert f"deleted {len(old)} of" in done.stdout, done.stdout
    assert chunks_in_store() == kept_run | bobs

    # The kept run loads in another process, fetching every chunk from the store.
    assert load_in(project, tmp_path / "empty-cache") == f"LOADED {kept_sha}"
    assert "1 runs checked, 0 damaged" in mlops_lite(project, "fsck")
    bobs_value = big_sha256(bob)
    assert load_in(bob, tmp_path / "bob-empty-cache") == f"LOADED {bobs_value}"
    git(project, "fsck", "--strict", "--no-dangling")
    assert git(project, "status", "--porcelain") == ""
    # Alice's clone took none of Bob's runs: gc read the remote without pulling.
    assert "large" in mlops_lite(project, "runs", "list")
    assert len(git(project, "for-each-ref", "refs/mlops/runs").splitlines()) == 1


def test_a_chunk_younger_than_the_grace_period_and_one_waiting_here_stay(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(tmp_path / "alice-cache"))
    shared = tmp_path / "shared-store"
    alice_project(project, f"file://{shared}", threshold="64 KiB")
    run_script(project, "large.py", MIB, "1")
    mlops_lite(project, "push")
    in_store = folder_chunks(shared)
    used = in_store()
    # A teammate's push in flight: a chunk uploaded, the ref that uses it not pushed yet.
    data = random.Random(9).randbytes(4096)
    digest = hashlib.sha256(data).hexdigest()
    (shared / "chunks" / digest[:2]).mkdir(parents=True, exist_ok=True)
    (shared / "chunks" / digest[:2] / digest).write_bytes(data)
    # A run recorded here and not pushed: its chunks wait in .git, never in danger.
    run_script(project, "large.py", MIB, "2")
    waiting = {p.name for p in (project / ".git" / "mlops-lite-blobs").rglob("*") if p.is_file()}
    assert waiting

    kept = gc(project, "--blobs")  # the default grace: a day
    assert kept.returncode == 0, kept.stderr
    assert "deleted 0 of" in kept.stdout and "kept 1 unused: younger than" in kept.stdout
    assert in_store() == used | {digest}

    two_hours_ago = (shared / "chunks" / digest[:2] / digest).stat().st_mtime - 7200
    os.utime(shared / "chunks" / digest[:2] / digest, (two_hours_ago, two_hours_ago))
    assert gc(project, "--blobs", "--blob-grace", "3h").returncode == 0
    assert digest in in_store()
    done = gc(project, "--blobs", "--blob-grace", "1h")
    assert done.returncode == 0, done.stderr
    assert in_store() == used
    assert {p.name for p in (project / ".git" / "mlops-lite-blobs").rglob("*") if p.is_file()} == (
        waiting
    )
    mlops_lite(project, "push")  # the waiting run's chunks still reach the store
    assert waiting <= in_store()


def test_gc_blobs_refuses_and_deletes_nothing_when_the_remote_cannot_be_read(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(tmp_path / "alice-cache"))
    shared = tmp_path / "shared-store"
    alice_project(project, f"file://{shared}", threshold="64 KiB")
    run_script(project, "large.py", MIB, "1")
    mlops_lite(project, "push")
    run_as(project, tmp_path / "alice-cache", MIB, "2")
    mlops_lite(project, "push")
    before = folder_chunks(shared)()
    runs = git(project, "for-each-ref", "refs/mlops/runs")
    git(project, "remote", "set-url", "origin", str(tmp_path / "gone.git"))

    refused = gc(project, "--keep-last", "1", "--blobs", "--blob-grace", "0s")
    assert refused.returncode == 4, refused.stderr  # as push and pull report it
    assert "needs the team's remote 'origin'" in refused.stderr
    assert "Nothing was deleted" in refused.stderr
    assert folder_chunks(shared)() == before
    assert git(project, "for-each-ref", "refs/mlops/runs") == runs
    # Without --blobs, deleting runs needs no remote.
    assert gc(project, "--keep-last", "1").returncode == 0
    assert len(git(project, "for-each-ref", "refs/mlops/runs").splitlines()) == 1


def test_gc_blobs_without_an_artifact_store_says_so(project: Path) -> None:
    refused = gc(project, "--blobs")
    assert refused.returncode == 1
    assert "configures none" in refused.stderr and "artifact_store" in refused.stderr


def test_a_chunk_gc_took_from_the_store_is_uploaded_again_by_the_next_run_that_makes_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(tmp_path / "alice-cache"))
    shared = tmp_path / "shared-store"
    origin = alice_project(project, f"file://{shared}", threshold="64 KiB")
    run_script(project, "large.py", MIB, "1")
    mlops_lite(project, "push")
    expected = big_sha256(project)
    # Deleted from the store (a teammate's gc, the run gone there); still in Alice's cache.
    shutil.rmtree(shared / "chunks")
    run_as(project, tmp_path / "alice-cache", MIB, "1")  # the same bytes again
    mlops_lite(project, "push")
    clone = teammate_clone(origin, tmp_path / "teammate")
    assert load_in(clone, tmp_path / "teammate-cache") == f"LOADED {expected}"


def test_a_dry_run_counts_a_run_folded_under_roots_as_gone_and_nothing_else(
    project: Path,
) -> None:
    """What ``gc --blobs -n`` walks when a run it would delete sits in an archive under roots."""
    from mlops_lite.operations.chunk_gc import _local_tips
    from mlops_lite.store import GitStore
    from mlops_lite.store.folding import fold_archives, fold_old_runs
    from mlops_lite.store.index import RunIndex
    from tests.unit.test_archive_listings import record_memory_runs

    with GitStore.open() as store:
        made = record_memory_runs(store, 40)  # type: ignore[arg-type]
        index = RunIndex(store)
        assert fold_old_runs(store, index, keep=0, batch=5) == 40  # 8 archives
        assert fold_archives(store, index, fanout=2) > 4  # roots of roots
        going_ref = sorted(made)[17]
        tips = _local_tips(store, index, {going_ref: made[going_ref]})
        index.close()
    reached = set(git(project, "rev-list", *tips).split())
    assert made[going_ref] not in reached
    assert {sha for ref, sha in made.items() if ref != going_ref} <= reached
