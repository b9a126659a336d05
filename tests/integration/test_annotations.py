"""Metadata logged after a run: beside the run, never changing it, shared like it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest

from mlops_lite import Client, log_metadata, pipeline, step
from mlops_lite.errors import DefinitionError, StepNotFoundError
from tests.conftest import git


@step
def train(lr: float) -> float:
    log_metadata({"loss": 0.25})
    return lr * 2


@pipeline
def training(lr: float = 0.1) -> None:
    train(lr=lr)


def test_metadata_added_later_shows_on_the_run_and_keeps_its_sha(project: Path) -> None:
    run = training()
    log_metadata({"reviewed": True, "notes": "looks good"}, run_id_name_or_prefix=run.sha[:10])
    log_metadata({"deployed": "2026-11-23"}, run_id_name_or_prefix=run.name, step_name="train")
    log_metadata({"notes": "better"}, run_id_name_or_prefix=run.name)
    with Client() as client:
        again = client.get_pipeline_run(run.name)
        assert (
            again.sha
            == run.sha
            == git(project, "rev-parse", f"refs/mlops/runs/training/{run.name}")
        )
        assert again.metadata == {"reviewed": True, "notes": "better"}
        assert again.steps["train"].metadata == {"loss": 0.25, "deployed": "2026-11-23"}
    assert git(project, "rev-list", "--count", f"refs/mlops/metadata/training/{run.name}") == "3"
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_annotating_a_missing_step_or_without_a_run_is_a_clear_error(project: Path) -> None:
    run = training()
    with pytest.raises(StepNotFoundError, match="nope"):
        log_metadata({"x": 1}, run_id_name_or_prefix=run.name, step_name="nope")
    with pytest.raises(DefinitionError, match="run_id_name_or_prefix"):
        log_metadata({"x": 1}, step_name="train")
    with pytest.raises(DefinitionError, match="outside a step"):
        log_metadata({"x": 1})


def test_concurrent_annotations_from_several_processes_all_land(project: Path) -> None:
    run = training()
    script = textwrap.dedent(
        f'''
        import sys
        from mlops_lite import log_metadata
        writer = f"writer{{sys.argv[1]}}"
        log_metadata({{writer: int(sys.argv[1])}}, run_id_name_or_prefix="{run.name}")
        '''
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(i)], cwd=project) for i in range(6)
    ]
    assert all(writer.wait(timeout=60) == 0 for writer in writers)
    with Client() as client:
        assert client.get_pipeline_run(run.name).metadata == {f"writer{i}": i for i in range(6)}


def test_annotations_travel_with_push_and_pull(project: Path, tmp_path: Path) -> None:
    from mlops_lite.operations.sharing import pull, push

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    run = training()
    log_metadata({"approved_by": "alice"}, run_id_name_or_prefix=run.name)
    push("origin", quiet=True)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    pull("origin", path=clone, quiet=True)
    with Client(clone) as client:
        assert client.get_pipeline_run(run.sha).metadata == {"approved_by": "alice"}


@pytest.mark.parametrize("transport", ["git", "dulwich"])
def test_diverged_metadata_is_merged_on_pull_and_then_pushes(
    project: Path, tmp_path: Path, transport: Literal["git", "dulwich"]
) -> None:
    from mlops_lite.operations.sharing import pull, push

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    run = training()
    push("origin", quiet=True)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    pull("origin", path=clone, quiet=True)
    # Both annotate the same run without seeing each other's.
    log_metadata({"approved_by": "alice", "stage": "staging"}, run_id_name_or_prefix=run.name)
    log_metadata(
        {"stage": "production"}, run_id_name_or_prefix=run.name, step_name="train", path=clone
    )
    log_metadata({"reviewed": True}, run_id_name_or_prefix=run.name, path=clone)
    push("origin", quiet=True)

    pulled = pull("origin", path=clone, quiet=True, transport=transport)
    ref = f"refs/mlops/metadata/training/{run.name}"
    assert pulled.merged == [ref] and not pulled.rejected
    push("origin", path=clone, quiet=True)  # the merge fast-forwards the remote
    pull("origin", quiet=True)
    for root in (project, clone):
        with Client(root) as client:
            merged = client.get_pipeline_run(run.name)
            assert merged.metadata == {"approved_by": "alice", "stage": "staging", "reviewed": True}
            assert merged.steps["train"].metadata == {"loss": 0.25, "stage": "production"}
    assert git(project, "rev-parse", ref) == git(clone, "rev-parse", ref)
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=clone, check=True)
