"""Large artifacts in a team's artifact store, git keeping pointers: against real servers.

S3 is moto's standalone server on 127.0.0.1 (``stores.py``), sftp the sshd the
sharing tests start, file:// a shared folder. Runs, pushes, clones and loads
happen in subprocesses, as a team would run them.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git, run_script
from tests.integration.remotes import SshServer, make_bare
from tests.integration.remotes import sshd as sshd  # a fixture
from tests.integration.stores import S3Server
from tests.integration.stores import s3_server as s3_server  # a fixture

pytest.importorskip("fsspec")

SCRIPT = textwrap.dedent(
    """
    import hashlib
    import random
    import sys
    from mlops_lite import log_metadata, pipeline, step

    @step
    def big(size: int, seed: int) -> bytes:
        data = random.Random(seed).randbytes(size)
        log_metadata({"sha256": hashlib.sha256(data).hexdigest()})
        return data

    @step
    def small() -> str:
        return "stays in git"

    @pipeline
    def large(size: int = 1000, seed: int = 7):
        big(size, seed)
        small()

    if __name__ == "__main__":
        large(size=int(sys.argv[1]), seed=int(sys.argv[2]) if len(sys.argv) > 2 else 7)
    """
)

# Reads the newest run's big output in another process: prints its SHA-256, or the error.
LOAD = textwrap.dedent(
    """
    import hashlib
    from mlops_lite import Client

    try:
        value = Client().get_pipeline("large").last_run.steps["big"].output.load()
        print("LOADED", hashlib.sha256(value).hexdigest())
    except Exception as error:
        print("ERROR", type(error).__name__, error)
    """
)


def mlops_lite(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout + completed.stderr


def load_in(clone: Path, cache: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=clone,
        capture_output=True,
        text=True,
        env={**os.environ, "MLOPS_LITE_CACHE_DIR": str(cache)},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def size_of(folder: Path) -> int:
    return sum(
        os.path.getsize(os.path.join(where, name))
        for where, _, names in os.walk(folder)
        for name in names
    )


def alice_project(project: Path, store: str, threshold: str = "1 MiB") -> Path:
    """Alice's repository with the store configured and committed, and a bare origin."""
    (project / "pyproject.toml").write_text(
        f'[tool.mlops-lite]\nartifact_store = "{store}"\nartifact_store_threshold = "{threshold}"\n'
    )
    (project / "large.py").write_text(SCRIPT)
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "an artifact store")
    origin = make_bare(project.parent / "origin.git")
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "-q", "origin", "main")  # the team's code, with its pyproject.toml
    return origin


def teammate_clone(origin: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(origin), where.name)
    mlops_lite(where, "pull")
    return where


def big_sha256(root: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", LOAD.replace(".output.load()", ".metadata['sha256']").replace(
            "hashlib.sha256(value).hexdigest()", "value"
        )],
        cwd=root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return completed.stdout.split()[-1]


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> tuple[S3Server, str]:
    """A fresh bucket; the AWS_* variables a user sets, for every process the test starts."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(Path(os.environ["HOME"]) / "alice-cache"))
    return s3_server, s3_server.new_bucket()


@pytest.mark.slow  # ~15 s: 200 MB through moto and back; run by default
def test_a_200_mb_output_in_s3_leaves_git_small_and_a_teammate_loads_it(
    project: Path, tmp_path: Path, s3: tuple[S3Server, str]
) -> None:
    server, bucket = s3
    origin = alice_project(project, f"s3://{bucket}/team")
    git_before = size_of(project / ".git")
    run_script(project, "large.py", str(200 * 1024 * 1024))
    expected = big_sha256(project)
    assert load_in(project, tmp_path / "alice-offline-cache") == f"LOADED {expected}"

    assert server.keys(bucket) == []  # nothing leaves the machine before push
    mlops_lite(project, "push")
    keys = server.keys(bucket)
    assert len(keys) >= 90 and all(key.startswith("team/chunks/") for key in keys)
    grown = size_of(project / ".git") - git_before
    assert grown < 1024 * 1024, f".git grew by {grown} bytes"  # kilobytes, not 200 MB
    assert git(project, "status", "--porcelain") == ""
    git(project, "fsck", "--strict", "--no-dangling")

    clone = teammate_clone(origin, tmp_path / "teammate")
    assert size_of(clone / ".git") < 2 * 1024 * 1024
    assert load_in(clone, tmp_path / "teammate-cache") == f"LOADED {expected}"
    git(clone, "fsck", "--strict", "--no-dangling")

    # A damaged chunk in the store is an error for whoever fetches it, never a value.
    victim = sorted(keys)[len(keys) // 2]
    server.overwrite(bucket, victim, b"not the bytes that were uploaded")
    damaged = load_in(clone, tmp_path / "fresh-cache")
    assert damaged.startswith("ERROR StoreError"), damaged
    assert "damaged" in damaged and victim.rsplit("/", 1)[-1] in damaged


def test_the_same_chunks_are_stored_once_for_the_team(
    project: Path, tmp_path: Path, s3: tuple[S3Server, str]
) -> None:
    server, bucket = s3
    origin = alice_project(project, f"s3://{bucket}/team", threshold="64 KiB")
    run_script(project, "large.py", str(3 * 1024 * 1024))
    mlops_lite(project, "push")
    first = server.keys(bucket)
    # Bob records the same value in his clone (the cache key differs: another size
    # argument first, then the same); his push uploads nothing new.
    bob = teammate_clone(origin, tmp_path / "bob")
    env = {"MLOPS_LITE_CACHE_DIR": str(tmp_path / "bob-cache"), "MLOPS_LITE_ENABLE_CACHE": "0"}
    subprocess.run(
        [sys.executable, "large.py", str(3 * 1024 * 1024)],
        cwd=bob, check=True, env={**os.environ, **env}, capture_output=True, timeout=120,
    )  # fmt: skip
    mlops_lite(bob, "push", env=env)
    assert server.keys(bucket) == first


def test_push_uploads_chunks_before_any_ref_and_moves_none_when_it_cannot(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-store"
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(tmp_path / "cache"))
    origin = alice_project(project, f"file://{shared}", threshold="64 KiB")
    run_script(project, "large.py", str(1024 * 1024))
    expected = big_sha256(project)
    waiting = list((project / ".git" / "mlops-lite-blobs").rglob("*"))
    assert [path for path in waiting if path.is_file()]

    # The store cannot be written (a file where its folder should be): push fails
    # before a single ref reaches the remote.
    shared.write_text("not a folder")
    completed = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "push"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 4  # as for an unreachable git remote
    assert "could not upload chunks to the artifact store" in completed.stderr, completed.stderr
    assert git(origin, "for-each-ref", "refs/mlops") == ""

    shared.unlink()
    mlops_lite(project, "push")
    assert git(origin, "for-each-ref", "refs/mlops")
    assert not [p for p in (project / ".git" / "mlops-lite-blobs").rglob("*") if p.is_file()]
    assert list(shared.rglob("chunks/*/*"))
    clone = teammate_clone(origin, tmp_path / "teammate")
    assert load_in(clone, tmp_path / "teammate-cache") == f"LOADED {expected}"


def test_loads_work_offline_for_what_is_on_this_machine_and_check_every_byte(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(cache))
    # An sftp store on a host that does not exist: nothing may try to reach it.
    alice_project(project, "sftp://nobody@127.0.0.1:9/nowhere", threshold="64 KiB")
    run_script(project, "large.py", str(1024 * 1024))
    expected = big_sha256(project)
    assert load_in(project, cache) == f"LOADED {expected}"
    # The small output stayed in git: no chunk, no store.
    chunk = next(p for p in (project / ".git" / "mlops-lite-blobs").rglob("*") if p.is_file())
    chunk.write_bytes(b"\0" + chunk.read_bytes()[1:])
    damaged = load_in(project, cache)
    assert damaged.startswith("ERROR StoreError") and "damaged" in damaged, damaged
    assert chunk.name in damaged


def test_an_sftp_store_through_the_test_sshd(
    project: Path,
    tmp_path: Path,
    sshd: SshServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("paramiko")
    # paramiko finds the user's key where ssh would.
    ssh_dir = Path(os.environ["HOME"]) / ".ssh"
    ssh_dir.mkdir(exist_ok=True)
    shutil.copy(sshd.key_dir / "id_ed25519", ssh_dir / "id_ed25519")
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(tmp_path / "alice-cache"))
    remote_folder = tmp_path / "sftp-store"
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{sshd.port}{remote_folder}"
    origin = alice_project(project, url, threshold="64 KiB")
    run_script(project, "large.py", str(1024 * 1024))
    expected = big_sha256(project)
    mlops_lite(project, "push")
    assert len(list(remote_folder.rglob("chunks/*/*"))) >= 1
    clone = teammate_clone(origin, tmp_path / "teammate")
    assert load_in(clone, tmp_path / "teammate-cache") == f"LOADED {expected}"
