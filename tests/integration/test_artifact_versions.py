"""Named, versioned artifacts end to end: versions, cache hits, input edges, save and load.

Pipelines run in subprocesses; results are read from this process through ``Client``;
the repository is checked with the git CLI.
"""

from __future__ import annotations

import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from mlops_lite import Client, load_artifact, register_artifact, save_artifact
from mlops_lite.errors import ArtifactVersionNotFoundError, StoreError, UntrustedPickleError
from tests.conftest import git, run_script

PRODUCE = textwrap.dedent(
    """
    import sys
    from typing import Annotated
    from mlops_lite import ArtifactConfig, pipeline, step

    @step
    def load(n: int) -> Annotated[list, "dataset"]:
        print("load executed")
        return list(range(n))

    @step
    def describe(
        dataset: list,
    ) -> Annotated[
        dict, ArtifactConfig(name="summary", tags=["stats"], run_metadata={"rows": 0})
    ]:
        return {"total": sum(dataset)}

    @step
    def unnamed(dataset: list) -> int:
        return len(dataset)

    @pipeline
    def produce(n: int = 3):
        data = load(n=n)
        describe(data)
        unnamed(data)

    if __name__ == "__main__":
        produce(n=int(sys.argv[1]))
    """
)

CONSUME = textwrap.dedent(
    """
    import sys
    from typing import Annotated, Optional
    from uuid import UUID
    from mlops_lite import pipeline, step
    from mlops_lite.client import Client

    @step
    def train(dataset: list, scale: int = 1) -> Annotated[int, "trained"]:
        print("train executed")
        return sum(dataset) * scale

    @pipeline
    def consume(dataset_id: Optional[UUID] = None, version: Optional[str] = None):
        if dataset_id is not None:
            dataset = Client().get_artifact_version(name_id_or_prefix=dataset_id)
        else:
            dataset = Client().get_artifact_version("dataset", version)
        train(dataset=dataset)

    if __name__ == "__main__":
        argument = sys.argv[1] if len(sys.argv) > 1 else ""
        if argument.startswith("id="):
            run = consume(dataset_id=UUID(argument[3:]))
        else:
            run = consume(version=argument or None)
        print("RUN", run.name)
    """
)


def refs(project: Path) -> str:
    return git(project, "for-each-ref", "refs/mlops")


def test_named_outputs_become_numbered_versions_and_a_cache_hit_reuses_its_version(
    project: Path,
) -> None:
    (project / "produce.py").write_text(PRODUCE)
    status = git(project, "status", "--porcelain")
    first = run_script(project, "produce.py", "3")
    second = run_script(project, "produce.py", "3")
    run_script(project, "produce.py", "4")
    assert "load executed" in first.stdout and "load executed" not in second.stdout

    client = Client(project)
    versions = client.list_artifact_versions("dataset")
    assert [(v.version, v.number) for v in versions] == [("1", 1), ("2", 2)]
    assert [v.load() for v in versions] == [[0, 1, 2], [0, 1, 2, 3]]
    runs = client.get_pipeline("produce").runs[::-1]
    assert [v.producer_run_name for v in versions] == [runs[0].name, runs[2].name]
    assert versions[0].producer_step_name == "load"
    assert versions[0].producer_step_run_id == runs[0].steps["load"].id
    # The cached run reused version 1: no version of its own.
    cached_output = runs[1].steps["load"].outputs["dataset"]
    assert runs[1].steps["load"].cached
    assert cached_output.artifact_version == versions[0]
    assert client.get_artifact_version("dataset") == versions[1]
    assert client.get_artifact_version("dataset", 1) == versions[0]
    assert client.get_artifact_version(versions[0].id) == versions[0]
    assert client.get_artifact_version(str(versions[0].id)[:8]) == versions[0]
    assert client.get_artifact("dataset").latest_version_name == "2"

    summary = client.get_artifact_version("summary")
    assert summary.tags == ["stats"] and summary.run_metadata == {"rows": 0}
    assert summary.type == "DataArtifact"
    # Outputs without a name are recorded with their run, not versioned.
    assert [a.name for a in client.list_artifacts()] == ["dataset", "summary"]
    assert runs[0].steps["unnamed"].output.artifact_version is None

    with pytest.raises(KeyError, match="no artifact named 'datasets'"):
        client.get_artifact_version("datasets")
    with pytest.raises(ArtifactVersionNotFoundError, match="has no version 7"):
        client.get_artifact_version("dataset", "7")
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
    assert git(project, "status", "--porcelain") == status


def test_an_artifact_version_given_to_a_step_is_an_input_edge_keyed_by_its_content(
    project: Path,
) -> None:
    (project / "produce.py").write_text(PRODUCE)
    (project / "consume.py").write_text(CONSUME)
    run_script(project, "produce.py", "3")
    client = Client(project)
    first_version = client.get_artifact_version("dataset")

    executed = run_script(project, "consume.py", f"id={first_version.id}")
    assert "train executed" in executed.stdout
    run = client.get_pipeline("consume").last_run
    step = run.steps["train"]
    # Recorded as lineage, not as a parameter; the UUID parameter as its text.
    assert step.parameters == {"scale": 1}
    assert run.parameters == {"dataset_id": str(first_version.id), "version": None}
    assert step.record.inputs["dataset"]["version_id"] == first_version.id.hex
    assert step.input_versions["dataset"] == first_version and step.inputs == {}
    assert step.output.load() == 3

    # The same content under another selector is the same cache key.
    again = run_script(project, "consume.py", "1")
    assert "train executed" not in again.stdout
    run_script(project, "produce.py", "5")
    changed = run_script(project, "consume.py")
    assert "train executed" in changed.stdout
    assert client.get_pipeline("consume").last_run.steps["train"].output.load() == 10


def test_a_missing_artifact_version_fails_before_anything_is_recorded(project: Path) -> None:
    (project / "produce.py").write_text(PRODUCE)
    (project / "consume.py").write_text(CONSUME)
    run_script(project, "produce.py", "3")
    before = refs(project)
    failed = run_script(project, "consume.py", "9", check=False)
    assert failed.returncode != 0
    assert "ArtifactVersionNotFoundError" in failed.stderr and "has no version 9" in failed.stderr
    assert refs(project) == before


SAVE_IN_STEP = textwrap.dedent(
    """
    from mlops_lite import pipeline, save_artifact, step

    @step
    def export(n: int = 2) -> None:
        saved = save_artifact({"rows": n}, name="export", tags=["manual"])
        print("returned", saved)

    @pipeline
    def exporting():
        export()

    if __name__ == "__main__":
        exporting()
    """
)


def test_save_artifact_and_load_artifact_outside_and_inside_a_run(project: Path) -> None:
    first = save_artifact([1, 2, 3], name="numbers", user_metadata={"source": "test"})
    second = save_artifact([4], name="numbers", version="v-extra")
    assert (first.version, second.version) == ("1", "v-extra")  # type: ignore[union-attr]
    assert first.run_metadata == {"source": "test"}  # type: ignore[union-attr]
    assert first.producer_run_name is None  # type: ignore[union-attr]
    assert load_artifact("numbers") == [4]
    assert load_artifact("numbers", 1) == [1, 2, 3]
    assert load_artifact(first.id) == [1, 2, 3]  # type: ignore[union-attr]

    (project / "save.py").write_text(SAVE_IN_STEP)
    completed = run_script(project, "save.py")
    assert "returned None" in completed.stdout  # made when the step is recorded
    saved = Client(project).get_artifact_version("export")
    assert saved.load() == {"rows": 2} and saved.tags == ["manual"]
    assert saved.producer_step_name == "export"
    assert isinstance(saved.id, uuid.UUID)
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_register_artifact_copies_a_folder_into_git_and_loads_it_back_as_a_path(
    project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    (folder / "q1").mkdir(parents=True)
    (folder / "q1" / "sales.csv").write_text("a,b\n1,2\n")
    (folder / "summary.txt").write_text("fine")
    version = register_artifact(str(folder), name="reports", tags=["quarterly"])
    assert version is not None and version.version == "1" and version.tags == ["quarterly"]
    assert git(project, "show", f"{version.artifact_id}:data/reports/q1/sales.csv") == "a,b\n1,2"
    copy = version.load()
    assert copy.name == "reports" and copy != folder
    assert (copy / "summary.txt").read_text() == "fine"
    single = register_artifact(str(folder / "summary.txt"), name="summary")
    assert single is not None and single.load().read_text() == "fine"


PICKLED = textwrap.dedent(
    """
    from typing import Annotated
    from mlops_lite import Model, get_step_context, pipeline, step

    class Weights:  # no materializer claims it: cloudpickle, as in ZenML
        def __init__(self, value):
            self.value = value

    @step
    def fit() -> Annotated[Weights, "weights"]:
        return Weights(3)

    @step
    def check(weights: Weights) -> int:
        # The version this run's fit just made, loaded while the run is recording.
        loaded = get_step_context().model.load_artifact("weights")
        return loaded.value + weights.value

    @pipeline(model=Model(name="pickles"))
    def pickled():
        check(fit())

    if __name__ == "__main__":
        pickled()
    """
)


def test_a_pickled_version_loads_in_this_clone_and_a_borrowed_run_name_buys_no_trust(
    project: Path,
) -> None:
    (project / "pickled.py").write_text(PICKLED)
    run_script(project, "pickled.py")
    client = Client(project)
    run = client.get_pipeline("pickled").last_run
    assert run.steps["check"].output.load() == 6
    genuine = client.get_artifact_version("weights")
    assert genuine.uses_pickle and genuine.trust()

    # A version whose event names that trusted run but holds other bytes, added by a
    # commit this clone did not write (as a teammate's would be): not trusted.
    from mlops_lite.store import GitStore
    from mlops_lite.store.artifacts import build_artifact
    from mlops_lite.store.registry import append_events, new_event

    with GitStore.open(project) as store:
        other, objects = build_artifact(
            b"\x80\x04K\x07.", materializer="cloudpickle", materializer_version=1,
            type_name="builtins.int", uses_pickle=True,
        )  # fmt: skip
        store.write_objects(objects)
        event = new_event(
            store, "create_version", version_id=uuid.uuid4().hex, run=dict(genuine._version.run),
            artifact_id=other.id, materializer="cloudpickle", materializer_version=1,
            type_name="builtins.int", size=7, uses_pickle=True,
        )  # fmt: skip
        append_events(store, "artifact", "weights", [event])
    forged = Client(project).get_artifact_version("weights")
    assert forged.version == "2" and not forged.trust()
    with pytest.raises(UntrustedPickleError, match="nor saved by this clone"):
        forged.load()
    assert forged.load(trust_pickle=True) == 7


def test_a_version_loads_only_when_its_content_matches_the_digest_recorded_with_it(
    project: Path,
) -> None:
    (project / "produce.py").write_text(PRODUCE)
    run_script(project, "produce.py", "3")
    save_artifact({"saved": "outside a run"}, name="notes")
    client = Client(project)
    made_by_run = client.get_artifact_version("dataset")
    run_output = client.get_pipeline("produce").last_run.steps["load"].outputs["dataset"]
    assert made_by_run._event.digest == run_output._record.digest is not None
    assert client.get_artifact_version("notes").load() == {"saved": "outside a run"}

    # A version naming the same artifact tree with another digest (a teammate's
    # event, or damage) is refused at load, not decoded.
    from mlops_lite.store import GitStore
    from mlops_lite.store.registry import append_events, new_event

    with GitStore.open(project) as store:
        genuine = made_by_run._event
        event = new_event(
            store, "create_version", version_id=uuid.uuid4().hex, artifact_id=genuine.artifact_id,
            materializer=genuine.materializer, materializer_version=genuine.materializer_version,
            type_name=genuine.type_name, size=genuine.size, digest="0" * 32,
        )  # fmt: skip
        append_events(store, "artifact", "dataset", [event])
    forged = Client(project).get_artifact_version("dataset")
    assert forged.version == "2"
    with pytest.raises(StoreError, match=r"artifact 'dataset' version 2 is damaged.*digest"):
        forged.load()
