"""The ZenML-style starter project in examples/: it runs end to end, imports only the ZenML way.

Feature engineering, training of two model versions with promotion by metric,
and batch inference from the ``production`` stage, driven by YAML configurations
with ``settings:`` and ``model:``; results are read back here, in another process.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_lite import Client
from tests.conftest import REPO_ROOT, git, run_script

EXAMPLE = REPO_ROOT / "examples" / "zenml_starter"

# What ZenML offers under each module path the example imports from.
ZENML_NAMES = {
    "zenml": {
        "ArtifactConfig", "Model", "get_pipeline_context", "get_step_context", "load_artifact",
        "log_metadata", "pipeline", "save_artifact", "step",
    },
    "zenml.client": {"Client"},
    "zenml.logger": {"get_logger"},
    "zenml.enums": {"ArtifactType", "ExecutionStatus", "ModelStages"},
}  # fmt: skip


def test_the_example_imports_mlops_lite_only_where_zenml_code_imports_zenml() -> None:
    seen = set()
    for path in sorted(EXAMPLE.rglob("*.py")):
        source = path.read_text()
        assert "zenml" not in source.lower().replace("zenml's", ""), path
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "mlops_lite" for a in node.names), path
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlops_lite"):
                zenml_module = "zenml" + (node.module or "").removeprefix("mlops_lite")
                names = {alias.name for alias in node.names}
                assert names <= ZENML_NAMES.get(zenml_module, set()), (path, zenml_module, names)
                seen.add(zenml_module)
    assert seen == {"zenml", "zenml.client", "zenml.logger"}


@pytest.mark.slow
def test_the_starter_project_trains_promotes_and_predicts_end_to_end(project: Path) -> None:
    shutil.copytree(EXAMPLE, project, dirs_exist_ok=True)
    git(project, "add", ".")
    git(project, "commit", "-qm", "starter project")
    status = git(project, "status", "--porcelain")

    features = run_script(project, "run.py", "--feature-pipeline")
    assert "settings 'docker' are recorded with the run" in features.stderr
    run_script(project, "run.py", "--training-pipeline")
    inference = run_script(project, "run.py", "--inference-pipeline")

    client = Client(project)
    versions = client.list_model_versions("breast_cancer_classifier")
    assert [(v.number, v.name) for v in versions] == [(1, "sgd"), (2, "rf")]
    accuracies = {
        v.name: v.get_model_artifact("sklearn_classifier").run_metadata["test_accuracy"]
        for v in versions
    }
    production = client.get_model_version("breast_cancer_classifier", "production")
    assert production.name == max(accuracies, key=accuracies.__getitem__)
    assert f"Inference with model version {production.name} finished" in inference.stdout
    model = client.get_model("breast_cancer_classifier")
    assert model.license == "Apache 2.0" and model.tags == ["breast_cancer", "classifier"]

    run = client.get_pipeline("inference").last_run
    assert run.model_version == production
    assert run.config["extra"] == {"notify_on_failure": True}
    predictions = production.get_artifact("predictions")
    assert predictions is not None and len(predictions.load()) == 28
    assert set(predictions.load()) <= {0, 1}
    preprocess = production.get_artifact("preprocess_pipeline")
    assert preprocess is not None
    assert preprocess.run_metadata == {"random_state": 17, "target": "target"}
    assert run.steps["inference_preprocessor"].input_versions["preprocess_pipeline"] == preprocess

    # Training again on the first dataset versions: versions "sgd" and "rf" are attached to,
    # and the datasets reach the steps as versions, passed by their UUIDs.
    run_script(
        project, "run.py", "--training-pipeline",
        "--train-dataset-version-name", "1", "--test-dataset-version-name", "1",
    )  # fmt: skip
    assert [v.name for v in client.list_model_versions("breast_cancer_classifier")] == [
        "sgd",
        "rf",
    ]
    again = client.get_pipeline("training").last_run
    first_train = client.get_artifact_version("dataset_trn", "1")
    assert again.parameters["train_dataset_id"] == str(first_train.id)
    assert again.steps["model_trainer"].input_versions["dataset_trn"] == first_train
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
    assert git(project, "status", "--porcelain") == status
