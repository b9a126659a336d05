"""One contract, two stores: the git store and its in-memory twin behave alike."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_lite.errors import MissingObjectError, RefConflictError
from mlops_lite.records import RunRecord, StepRecord
from mlops_lite.store import GitStore
from mlops_lite.store import objects as o
from mlops_lite.store.artifacts import build_artifact, read_artifact
from mlops_lite.store.index import read_run_commit
from mlops_lite.store.interface import ObjectRefStore
from mlops_lite.store.memory import MemoryStore
from mlops_lite.store.runs import build_run_commit, build_step_tree
from tests.conftest import git


@pytest.fixture(params=["git", "memory"])
def store(request: pytest.FixtureRequest, project: Path) -> Iterator[ObjectRefStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    git_store = GitStore.open(project)
    yield git_store
    git_store.close()


@pytest.fixture
def code_commit(store: ObjectRefStore, project: Path) -> str:
    if isinstance(store, MemoryStore):
        empty = o.tree({})
        commit = o.commit(tree_id=empty.id, parents=[], author=store.identity, timestamp=1, tz_offset_minutes=0, message="code")
        store.write_objects([empty, commit])
        return commit.id
    return git(project, "rev-parse", "HEAD")


def test_objects_are_content_addressed(store: ObjectRefStore) -> None:
    first, second = o.blob(b"same"), o.blob(b"same")
    store.write_objects([first, second])
    assert first.id == second.id and store.has_object(first.id)
    assert store.read_object(first.id) == b"same"


def test_missing_object_is_a_store_error(store: ObjectRefStore) -> None:
    assert not store.has_object("ab" * 20)
    with pytest.raises(MissingObjectError):
        store.read_object("ab" * 20)


def test_loose_and_packed_objects_read_alike(store: ObjectRefStore) -> None:
    loose, packed = o.blob(b"loose"), o.blob(os.urandom(70_000))
    store.write_loose_object(loose)
    store.write_objects([packed])
    assert list(store.read_blobs([packed.id, loose.id])) == [packed.data, b"loose"]


def test_ref_is_created_once_and_moved_only_from_its_value(store: ObjectRefStore) -> None:
    a, b = o.blob(b"a"), o.blob(b"b")
    store.write_objects([a, b])
    store.update_ref("refs/mlops/runs/p/r", a.id, None)
    with pytest.raises(RefConflictError):
        store.update_ref("refs/mlops/runs/p/r", b.id, None)
    with pytest.raises(RefConflictError):
        store.update_ref("refs/mlops/runs/p/r", b.id, b.id)
    store.update_ref("refs/mlops/runs/p/r", b.id, a.id)
    assert store.read_ref("refs/mlops/runs/p/r") == b.id
    assert store.read_ref("refs/mlops/runs/p/none") is None


def test_concurrent_compare_and_swap_lets_exactly_one_writer_win(store: ObjectRefStore) -> None:
    start = o.blob(b"start")
    candidates = [o.blob(f"candidate {i}".encode()) for i in range(8)]
    store.write_objects([start, *candidates])
    store.update_ref("refs/mlops/shared", start.id, None)
    winners: list[str] = []

    def attempt(candidate: o.GitObject) -> None:
        try:
            store.update_ref("refs/mlops/shared", candidate.id, start.id)
            winners.append(candidate.id)
        except RefConflictError:
            pass

    threads = [threading.Thread(target=attempt, args=(c,)) for c in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and store.read_ref("refs/mlops/shared") == winners[0]


def test_a_run_commit_round_trips(store: ObjectRefStore, code_commit: str) -> None:
    artifact, artifact_objects = build_artifact(
        os.urandom(20 * 1024 * 1024), materializer="m", materializer_version=1, type_name="t", uses_pickle=False
    )
    step = StepRecord(name="s", function="m.s", status="completed", cache_key="k")
    step_tree, step_objects = build_step_tree(step, "printed\n", {"output": artifact.id})
    record = RunRecord(run_name="r", pipeline_name="p", status="completed", start_time=1.0, step_names=["s"])
    commit, run_objects = build_run_commit(store, record, {"s": step_tree.id}, code_commit)
    store.write_objects([*artifact_objects, *step_objects, *run_objects])
    read_record, steps, pinned = read_run_commit(store, commit.id)
    assert read_record.run_name == "r" and list(steps) == ["s"] and pinned == code_commit
    meta, payload = read_artifact(store.read_object, artifact.id, store.read_blobs)
    assert meta.size == len(payload) == 20 * 1024 * 1024
    assert bytes(payload) == b"".join(
        bytes(obj.data) for obj in artifact_objects if obj.type_num == o.BLOB and len(obj.data) > 1000
    )
