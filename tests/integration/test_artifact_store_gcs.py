"""A ``gs://`` artifact store, against a real GCS JSON API on 127.0.0.1.

The same journey as the S3 test (``test_artifact_store.py``), smaller: a run
whose output lives in the store, a push, a teammate's clone that loads it, and
a damaged object that is an error. The emulator and gcsfs are reached as a
user reaches Google Cloud Storage: gcsfs finds its endpoint and credentials
in the environment (here: none, so it connects anonymously), never in
``pyproject.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git, run_script
from tests.integration.gcs_server import GcsServer
from tests.integration.gcs_server import gcs_server as gcs_server  # a fixture
from tests.integration.test_artifact_store import (
    alice_project,
    big_sha256,
    load_in,
    mlops_lite,
    size_of,
    teammate_clone,
)

pytest.importorskip("fsspec")


@pytest.fixture
def gcs(gcs_server: GcsServer, monkeypatch: pytest.MonkeyPatch) -> tuple[GcsServer, str]:
    """A fresh bucket; the variables a user sets, for every process the test starts."""
    for name, value in gcs_server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(Path(os.environ["HOME"]) / "alice-cache"))
    return gcs_server, gcs_server.new_bucket()


def test_a_gs_store_keeps_outputs_out_of_git_and_a_teammate_loads_them(
    project: Path, tmp_path: Path, gcs: tuple[GcsServer, str]
) -> None:
    server, bucket = gcs
    origin = alice_project(project, f"gs://{bucket}/team")
    git_before = size_of(project / ".git")

    run_script(project, "large.py", str(5 * 1024 * 1024))
    expected = big_sha256(project)
    assert server.keys(bucket) == []  # nothing leaves the machine before push
    mlops_lite(project, "push")
    keys = server.keys(bucket)
    assert keys and all(key.startswith("team/chunks/") for key in keys)
    assert size_of(project / ".git") - git_before < 256 * 1024  # kilobytes, not 5 MB
    git(project, "fsck", "--strict", "--no-dangling")

    clone = teammate_clone(origin, tmp_path / "teammate")
    assert load_in(clone, tmp_path / "teammate-cache") == f"LOADED {expected}"

    victim = keys[len(keys) // 2]
    server.overwrite(bucket, victim, b"not the bytes that were uploaded")
    damaged = load_in(clone, tmp_path / "fresh-cache")
    assert damaged.startswith("ERROR StoreError"), damaged
    assert "damaged" in damaged and victim.rsplit("/", 1)[-1] in damaged
