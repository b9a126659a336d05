"""Recording many real runs fast, for tests of runs at scale (without executing pipelines)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops_lite.core.hashing import content_digest
from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord, StepSummary
from mlops_lite.materializers import get_materializer
from mlops_lite.store import GitStore
from mlops_lite.store.artifacts import build_artifact
from mlops_lite.store.layout import build_run_commit, build_step_tree, run_ref

START = 1_700_000_000.0


def record_runs(
    root: Path, count: int, *, pipeline: str = "train", first: int = 0
) -> dict[str, str]:
    """``count`` completed runs named ``run-00000``... of one step each: ``{ref: sha}``.

    Each has a parameter, a metric and a cache key of its own, and an output
    (the number itself) stored as an artifact, as the runner records them.
    """
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    made: dict[str, str] = {}
    materializer = get_materializer("builtins.msgpack")
    with GitStore(str(root)) as store:
        objects = []
        for number in range(first, first + count):
            payload = materializer.save(str(number))
            artifact, artifact_objects = build_artifact(
                payload, materializer="builtins.msgpack", materializer_version=1,
                type_name="builtins.str", uses_pickle=False,
            )  # fmt: skip
            output = OutputRecord(
                artifact_id=artifact.id,  # type: ignore[arg-type]
                materializer="builtins.msgpack",
                materializer_version=1,
                type_name="builtins.str",
                size=len(payload),
                digest=content_digest(payload),
            )
            step = StepRecord(
                name="make", function="m.make", status="completed",
                cache_key=f"key-{pipeline}-{number}", outputs={"output": output},  # type: ignore[arg-type]
                start_time=START + number, end_time=START + number + 1,
                metadata={"accuracy": number / 1000},
            )  # fmt: skip
            step_tree, step_objects = build_step_tree(step, "", {"output": output.artifact_id})
            summary = step.summary()
            assert isinstance(summary, StepSummary)
            record = RunRecord(
                run_name=f"run-{number:05d}", pipeline_name=pipeline, status="completed",
                start_time=START + number, end_time=START + number + 1,
                parameters={"n": number}, step_names=["make"],
                author={"name": "Test User", "email": "test@example.com"},
                environment={"host": "test-host"}, step_summary={"make": summary},
            )  # fmt: skip
            commit, run_objects = build_run_commit(
                store.identity, record, {"make": step_tree.id}, head
            )
            objects += [*artifact_objects, *step_objects, *run_objects]
            made[run_ref(pipeline, record.run_name)] = commit.id
        store.write_objects(objects).release()
        store.refs.update_many([(ref, None, sha) for ref, sha in made.items()])
    return made


def git_refs(root: Path, prefix: str = "refs/mlops/") -> dict[str, str]:
    """``{ref: sha}`` under ``prefix``, as git lists them."""
    lines = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)", prefix],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    return dict(line.split(" ") for line in lines)
