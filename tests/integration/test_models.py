"""The model control plane end to end: versions per run, stages, links, lazy references.

Training runs create numbered model versions and promote by metric; inference runs
work on the ``production`` version and read its artifacts through a lazy reference.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lite import Client, Model, log_metadata
from mlops_lite.errors import ModelStageError, ModelVersionNotFoundError
from tests.conftest import git, run_script

PROJECT = textwrap.dedent(
    """
    import sys
    from typing import Annotated
    from mlops_lite import (
        ArtifactConfig, Model, get_pipeline_context, get_step_context, log_metadata, pipeline,
        step,
    )
    from mlops_lite.client import Client

    @step
    def load(n: int = 4) -> Annotated[list, "dataset"]:
        return list(range(n))

    @step
    def train(
        dataset: list, weight: float = 1.0
    ) -> Annotated[dict, ArtifactConfig(name="classifier", is_model_artifact=True)]:
        return {"weight": weight}

    @step
    def evaluate(classifier: dict) -> Annotated[float, "accuracy"]:
        accuracy = min(1.0, classifier["weight"] / 4)
        latest = Client().get_artifact_version("classifier")  # made by this run's train
        log_metadata(metadata={"accuracy": accuracy}, artifact_version_id=latest.id)
        log_metadata(metadata={"evaluated": True}, infer_model=True)
        return accuracy

    @step
    def promote(accuracy: float) -> None:
        model = get_step_context().model
        try:
            current = Client().get_model_version(model.name, "production")
        except KeyError:
            model.set_stage("production", force=True)
            return
        if accuracy > current.get_artifact("classifier").run_metadata["accuracy"]:
            model.set_stage("production", force=True)

    @pipeline(model=Model(name="churn", license="Apache 2.0", tags=["demo"]))
    def training(weight: float = 1.0):
        classifier = train(load(), weight=weight)
        promote(evaluate(classifier))

    @step
    def predict(classifier: dict, dataset: list) -> Annotated[list, "predictions"]:
        return [x * classifier["weight"] for x in dataset]

    @pipeline(model=Model(name="churn", version="production"))
    def inference():
        classifier = get_pipeline_context().model.get_model_artifact("classifier")
        predict(classifier, load())

    @pipeline(model=Model(name="churn", version="experiment-a"))
    def named():
        train(load(), weight=0.5)

    if __name__ == "__main__":
        if sys.argv[1] == "train":
            print("RUN", training(weight=float(sys.argv[2])).name)
        elif sys.argv[1] == "named":
            print("RUN", named().name)
        else:
            print("RUN", inference().name)
    """
)


@pytest.fixture
def churn(project: Path) -> Path:
    (project / "churn.py").write_text(PROJECT)
    return project


def test_runs_create_versions_promote_by_metric_and_inference_uses_production(
    churn: Path,
) -> None:
    status = git(churn, "status", "--porcelain")
    for weight in ("2", "3", "1"):
        run_script(churn, "churn.py", "train", weight)
    inference = run_script(churn, "churn.py", "inference")

    client = Client(churn)
    model = client.get_model("churn")
    assert model.license == "Apache 2.0" and model.tags == ["demo"]
    assert [(v.number, v.name, v.stage) for v in model.versions] == [
        (1, "1", "archived"),
        (2, "2", "production"),
        (3, "3", None),
    ]
    history = model.stage_history
    assert [(c["version"], c["archived"]) for c in history] == [("1", None), ("2", "1")]
    trainings = client.get_pipeline("training").runs[::-1]
    assert history[1]["run"] == f"training/{trainings[1].name}"
    assert history[1]["author"] == "test@example.com"

    production = client.get_model_version("churn", "production")
    assert production.number == 2 and production.run_metadata == {"evaluated": True}
    classifier = production.get_artifact("classifier")
    assert classifier is not None and classifier.load() == {"weight": 3.0}
    assert classifier.run_metadata == {"accuracy": 0.75}
    assert classifier.type == "ModelArtifact"
    assert set(production.model_artifacts) == {"classifier"}
    assert set(production.data_artifacts) == {"accuracy", "dataset", "predictions"}
    assert production.get_data_artifact("classifier") is None

    run = client.get_pipeline("inference").last_run
    assert inference.stdout.strip().endswith(run.name)
    assert run.model_version == production
    assert production.run_names[-1] == f"inference/{run.name}"
    assert run.steps["predict"].input_versions["classifier"] == classifier
    assert run.steps["predict"].output.load() == [0.0, 3.0, 6.0, 9.0]
    assert client.get_model_version("churn").number == 3  # latest
    assert client.get_model_version("churn", 1).stage == "archived"

    # Metadata by name and version from anywhere, as ZenML's log_metadata takes it.
    log_metadata({"owner": "ml-team"}, model_name="churn", model_version="production", path=churn)
    log_metadata({"checked": True}, artifact_name="classifier", artifact_version="2", path=churn)
    assert client.get_model_version("churn", 2).run_metadata == {
        "evaluated": True,
        "owner": "ml-team",
    }
    assert client.get_artifact_version("classifier", 2).run_metadata == {
        "accuracy": 0.75,
        "checked": True,
    }
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=churn, check=True)
    assert git(churn, "status", "--porcelain") == status


def test_a_named_version_is_created_once_then_attached_to(churn: Path) -> None:
    run_script(churn, "churn.py", "named")
    run_script(churn, "churn.py", "named")
    versions = Client(churn).list_model_versions("churn")
    assert [(v.number, v.name) for v in versions] == [(1, "experiment-a")]
    assert len(versions[0].run_names) == 2


def test_a_stage_nobody_holds_fails_before_anything_is_recorded(churn: Path) -> None:
    run_script(churn, "churn.py", "named")
    before = git(churn, "for-each-ref", "refs/mlops")
    failed = run_script(churn, "churn.py", "inference", check=False)
    assert failed.returncode != 0
    assert "model 'churn' has no version in stage production" in failed.stderr
    assert git(churn, "for-each-ref", "refs/mlops") == before
    with pytest.raises(KeyError):
        Client(churn).get_model_version("churn", "production")
    with pytest.raises(ModelVersionNotFoundError, match="no model named 'fraud'"):
        Client(churn).get_model_version("fraud")


def test_set_stage_from_code_and_cli_keeps_one_version_per_stage(churn: Path) -> None:
    run_script(churn, "churn.py", "train", "1")
    run_script(churn, "churn.py", "train", "2")  # takes production from version 1
    first = Model(name="churn", version="1")
    first.set_stage("staging")
    assert first.stage == "staging" and first.number == 1
    assert first.load_artifact("classifier") == {"weight": 1.0}
    assert first.get_artifact("missing") is None  # as ZenML's get_artifact
    with pytest.raises(KeyError, match="has no artifact 'missing' linked"):
        first.load_artifact("missing")
    with pytest.raises(ModelStageError, match="version 2 is there"):
        first.set_stage("production")
    moved = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "model", "stage", "churn", "1", "production",
         "--force", "--json"],
        cwd=churn, capture_output=True, text=True, check=True,
    )  # fmt: skip
    change = json.loads(moved.stdout)["change"]
    assert change["archived"] == "2" and change["stage"] == "production"
    client = Client(churn)
    assert client.get_model("churn").stages == {"production": "1"}
    assert client.get_model_version("churn", 2).stage == "archived"


STEP_MODELS = textwrap.dedent(
    """
    from typing import Annotated
    from mlops_lite import Model, get_step_context, pipeline, step

    @step(model=Model(name="scorer"))
    def score(x: int = 2) -> Annotated[int, "score"]:
        model = get_step_context().model
        print("SCORE", model.name, model.number)
        return x * 2

    @step
    def plain() -> Annotated[int, "plain"]:
        print("PLAIN", get_step_context().model.name)
        return 1

    @pipeline(model=Model(name="main"))
    def mixed():
        score()
        plain()

    if __name__ == "__main__":
        mixed()
    """
)


def test_a_step_with_its_own_model_links_its_outputs_to_that_model(project: Path) -> None:
    (project / "mixed.py").write_text(STEP_MODELS)
    completed = run_script(project, "mixed.py")
    assert "SCORE scorer 1" in completed.stdout and "PLAIN main" in completed.stdout
    client = Client(project)
    assert [m.name for m in client.list_models()] == ["main", "scorer"]
    scorer, main = client.get_model_version("scorer"), client.get_model_version("main")
    assert set(scorer.data_artifacts) == {"score"} and set(main.data_artifacts) == {"plain"}
    run = client.get_pipeline("mixed").last_run
    assert run.model_version == main
    assert scorer.run_names == main.run_names == [f"mixed/{run.name}"]


def test_a_rerun_reads_the_registry_of_the_repository_it_records_into(churn: Path) -> None:
    # rerun executes the pinned code in a temporary tree: Client() in a step must
    # still find this repository (the evaluate step reads the classifier's version).
    git(churn, "add", "churn.py")
    git(churn, "commit", "-qm", "churn")
    run_script(churn, "churn.py", "train", "2")
    sha = Client(churn).get_pipeline("training").last_run.sha
    rerun = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "rerun", sha, "--json"],
        cwd=churn, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rerun.returncode in (0, 1), rerun.stderr
    latest = Client(churn).get_pipeline("training").last_run
    assert latest.reproduces == sha and latest.status == "completed"
    assert [v.number for v in Client(churn).list_model_versions("churn")] == [1, 2]
