"""One contract, two stores: the git store and its in-memory twin behave alike.

Every test runs against both, down to whole pipelines recorded, cached, failed
and read back through the client.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest

from mlops_lite import pipeline, step
from mlops_lite.client import Client
from mlops_lite.core.records import RunRecord, StepRecord
from mlops_lite.errors import MissingObjectError, RefConflictError, StepFailedError
from mlops_lite.execution import run_pipeline
from mlops_lite.store import GitStore, MemoryStore, Store
from mlops_lite.store import objects as o
from mlops_lite.store.artifacts import build_artifact, read_artifact
from mlops_lite.store.layout import build_run_commit, build_step_tree, read_run_commit
from mlops_lite.store.runs import RunWriter


@pytest.fixture(params=["git", "memory"])
def store(request: pytest.FixtureRequest, project: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    git_store = GitStore.open(project)
    yield git_store
    git_store.close()


def test_objects_are_content_addressed(store: Store) -> None:
    first, second = o.blob(b"same"), o.blob(b"same")
    store.write_objects([first, second])
    assert first.id == second.id and store.has_object(first.id)
    assert store.read_object(first.id) == b"same"


def test_missing_object_is_a_store_error(store: Store) -> None:
    assert not store.has_object("ab" * 20)
    with pytest.raises(MissingObjectError):
        store.read_object("ab" * 20)


def test_few_and_many_objects_read_alike(store: Store) -> None:
    few, many = o.blob(b"loose"), [o.blob(os.urandom(70_000)) for _ in range(4)]
    store.write_objects([few])
    store.write_objects(many)
    assert list(store.read_blobs([many[0].id, few.id])) == [many[0].data, b"loose"]
    found = store.read_objects([few.id, "ab" * 20])
    assert list(found) == [few.id] and bytes(found[few.id].data) == b"loose"


def test_many_objects_stream_in_the_order_asked(store: Store) -> None:
    # Past 50, the git store streams them through git cat-file; a few it reads itself.
    blobs = [o.blob(b"%d" % number) for number in range(120)]
    store.write_objects(blobs)
    loose = o.blob(b"written alone")
    store.write_objects([loose])
    wanted = [*(blob.id for blob in reversed(blobs[:60])), "ab" * 20, loose.id]
    streamed = store.stream_objects(wanted)
    first = next(streamed)
    assert first.id == blobs[59].id and bytes(first.data) == b"59"
    assert [found.id for found in streamed] == [*wanted[1:60], loose.id]
    few = store.stream_objects([blobs[3].id, "cd" * 20, blobs[1].id])
    assert [bytes(found.data) for found in few] == [b"3", b"1"]


def test_a_stream_of_objects_left_early_ends_its_reader(store: Store) -> None:
    # More than any pipe between git and us holds, both ways: when we stop, git is
    # blocked writing to us, and would never read the rest of what we ask.
    blobs = [o.blob(os.urandom(300_000)) for _ in range(60)]
    store.write_objects(blobs)
    streamed = store.stream_objects([blob.id for blob in blobs] * 50)
    assert next(streamed).id == blobs[0].id
    ended = threading.Thread(target=streamed.close, daemon=True)
    ended.start()
    ended.join(timeout=60)  # a hang guard, not a timing
    assert not ended.is_alive()


def test_ref_is_created_once_and_moved_only_from_its_value(store: Store) -> None:
    a, b = o.blob(b"a"), o.blob(b"b")
    store.write_objects([a, b])
    store.refs.compare_and_swap("refs/mlops/runs/p/r", None, a.id)
    with pytest.raises(RefConflictError):
        store.refs.compare_and_swap("refs/mlops/runs/p/r", None, b.id)
    with pytest.raises(RefConflictError):
        store.refs.compare_and_swap("refs/mlops/runs/p/r", b.id, b.id)
    store.refs.compare_and_swap("refs/mlops/runs/p/r", a.id, b.id)
    assert store.refs.read("refs/mlops/runs/p/r") == b.id
    assert store.refs.read("refs/mlops/runs/p/none") is None
    assert store.refs.list("refs/mlops/runs/") == {"refs/mlops/runs/p/r": b.id}


def test_concurrent_compare_and_swap_lets_exactly_one_writer_win(store: Store) -> None:
    start = o.blob(b"start")
    candidates = [o.blob(f"candidate {i}".encode()) for i in range(8)]
    store.write_objects([start, *candidates])
    store.refs.compare_and_swap("refs/mlops/shared", None, start.id)
    winners: list[str] = []

    def attempt(candidate: o.GitObject) -> None:
        try:
            store.refs.compare_and_swap("refs/mlops/shared", start.id, candidate.id)
            winners.append(candidate.id)
        except RefConflictError:
            pass

    threads = [threading.Thread(target=attempt, args=(c,)) for c in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and store.refs.read("refs/mlops/shared") == winners[0]


def test_a_run_commit_round_trips(store: Store) -> None:
    code_commit = store.pin_code().commit
    artifact, artifact_objects = build_artifact(
        os.urandom(20 * 1024 * 1024),
        materializer="m",
        materializer_version=1,
        type_name="t",
        uses_pickle=False,
    )
    step_record = StepRecord(name="s", function="m.s", status="completed")
    step_tree, step_objects = build_step_tree(step_record, "printed\n", {"output": artifact.id})
    record = RunRecord(
        run_name="r", pipeline_name="p", status="completed", start_time=1.0, step_names=["s"]
    )
    commit, run_objects = build_run_commit(store.identity, record, {"s": step_tree.id}, code_commit)
    store.write_objects([*artifact_objects, *step_objects, *run_objects])
    run = read_run_commit(store.read_object, commit.id)
    assert (
        run.record.run_name == "r" and list(run.steps) == ["s"] and run.code_commit == code_commit
    )
    meta, payload = read_artifact(store.read_object, artifact.id, read_many=store.read_blobs)
    assert meta.size == len(payload) == 20 * 1024 * 1024
    assert bytes(payload) == b"".join(
        bytes(obj.data)
        for obj in artifact_objects
        if obj.type_num == o.BLOB and len(obj.data) > 1000
    )


def test_the_run_writer_moves_the_ref_from_running_to_finished(store: Store) -> None:
    record = RunRecord(run_name="r1", pipeline_name="p", status="running", start_time=1.0)
    writer = RunWriter(store, record, store.pin_code().commit)
    running = writer.start()
    assert store.refs.read(writer.ref) == running
    writer.record_step(StepRecord(name="s", function="m.s", status="completed"), "log\n")
    record.status = "completed"
    final = writer.finish(record)
    assert store.refs.read(writer.ref) == final
    assert read_run_commit(store.read_object, final).record.status == "completed"


# whole pipelines -------------------------------------------------------------

calls: list[str] = []


@step
def produce(n: int) -> Annotated[list[int], "numbers"]:
    calls.append("produce")
    return list(range(n))


@step
def total(numbers: list[int]) -> int:
    calls.append("total")
    print("summing", len(numbers))
    return sum(numbers)


@step
def explode(value: int) -> int:
    raise ValueError(f"no {value}")


@pipeline
def summing(n: int = 4) -> None:
    total(produce(n=n))


@pipeline
def failing() -> None:
    explode(total(produce(n=2)))


def test_a_pipeline_records_caches_and_reads_back_alike(store: Store) -> None:
    calls.clear()
    first = run_pipeline(summing, (), {"n": 5}, store=store)
    assert first.status == "completed" and calls == ["produce", "total"]
    assert first.steps["total"].output.load() == 10
    assert "summing 5" in first.steps["total"].logs
    second = run_pipeline(summing, (), {"n": 5}, store=store)
    assert calls == ["produce", "total"], "the second run is served from the cache"
    assert [s.cached for s in second.steps.values()] == [True, True]
    assert second.steps["total"].output.id == first.steps["total"].output.id
    with Client(store=store) as client:
        assert [run.sha for run in client.get_pipeline("summing").runs] == [second.sha, first.sha]


def test_a_failing_pipeline_is_recorded_alike(store: Store) -> None:
    with pytest.raises(StepFailedError) as raised:
        run_pipeline(failing, (), {}, store=store)
    with Client(store=store) as client:
        run = client.get_pipeline_run(raised.value.run_name)
        assert run.status == "failed"
        assert run.steps["explode"].status == "failed" and "no 1" in (
            run.steps["explode"].error or ""
        )
