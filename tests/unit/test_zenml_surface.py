"""ZenML's names under ``mlops_lite``: declarations, tracing and options, without running."""

from __future__ import annotations

import importlib
import logging
import uuid
import warnings
from collections.abc import Iterator
from typing import Annotated, Any

import pytest

from mlops_lite import (
    ArtifactConfig,
    Model,
    get_pipeline_context,
    pipeline,
    step,
)
from mlops_lite.core.references import ArtifactSelector
from mlops_lite.definition import settings as settings_module
from mlops_lite.definition.config import configure
from mlops_lite.definition.hooks import hook_name, run_hook
from mlops_lite.enums import ArtifactType, ExecutionStatus, ModelStages
from mlops_lite.errors import CompatibilityWarning, ConfigError, DefinitionError
from mlops_lite.logger import get_logger


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    # "One warning per setting" is per process; each test starts from none seen.
    settings_module._warned.clear()
    yield


@step
def load(n: int = 3) -> Annotated[list, "dataset"]:
    return list(range(n))


@step
def train(
    dataset: list, rate: float = 0.1
) -> Annotated[dict, ArtifactConfig(name="clf", version="v1", is_model_artifact=True)]:
    return {"w": rate}


@step
def untitled(dataset: list) -> tuple[int, Annotated[int, ArtifactConfig(tags=["t"])]]:
    return 1, 2


def test_output_names_and_versioning_follow_annotated_and_artifact_config() -> None:
    (dataset,) = load.outputs
    (clf,) = train.outputs
    plain, configured = untitled.outputs
    assert (dataset.name, dataset.named, dataset.artifact_name("p", "load")) == (
        "dataset",
        True,
        "dataset",
    )
    assert clf.name == "clf" and clf.config is not None and clf.config.link_kind == "model"
    assert plain.artifact_name("p", "untitled") is None
    # An ArtifactConfig without a name versions the output under ZenML's default name.
    assert configured.artifact_name("p", "untitled") == "p.untitled.output_1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "a b"}, "part of a git ref"),
        ({"tags": "one"}, "list of strings"),
        ({"artifact_type": "Weird"}, "use an ArtifactType"),
        ({"run_metadata": {"k": object()}}, "JSON-like"),
    ],
)
def test_a_wrong_artifact_config_is_a_definition_error(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message):
        ArtifactConfig(**arguments)


def test_models_validate_their_name_and_version_and_read_from_configuration() -> None:
    assert Model(name="churn", version=ModelStages.PRODUCTION).version == "production"
    with pytest.raises(DefinitionError, match="part of a git ref"):
        Model(name="my model")
    with pytest.raises(DefinitionError, match="is not a version"):
        Model(name="churn", version=0)
    model = Model.from_config(
        {"name": "churn", "version": "rf", "license": "MIT", "tags": ["a"]}, source="c.yaml"
    )
    assert model.to_config() == {"name": "churn", "version": "rf", "license": "MIT", "tags": ["a"]}
    with pytest.raises(ConfigError, match=r"unknown key model\.licence; did you mean 'license'"):
        Model.from_config({"name": "churn", "licence": "MIT"}, source="c.yaml")


def test_enums_compare_equal_to_the_strings_mlops_lite_records() -> None:
    assert ExecutionStatus.COMPLETED == "completed"
    assert ModelStages.LATEST == "latest"
    assert ArtifactType.MODEL == "ModelArtifact"


def test_get_logger_prints_info_to_stdout_once(capsys: pytest.CaptureFixture[str]) -> None:
    logger = get_logger("tests.zenml_surface")
    assert get_logger("tests.zenml_surface") is logger
    logger.info("hello")
    logger.debug("not shown")
    assert capsys.readouterr().out == "hello\n"
    assert not logger.propagate and logger.level == logging.INFO


# tracing --------------------------------------------------------------------------


@pipeline(model=Model(name="churn", version="production"), extra={"notify": True})
def inference(rate: float = 0.5) -> None:
    context = get_pipeline_context()
    assert context.name == "inference" and context.extra["notify"] is True
    classifier = context.model.get_artifact("clf")
    load(id="first_load")
    train(dataset=classifier, rate=rate, after="first_load")


def test_artifact_references_in_a_body_are_inputs_and_id_and_after_name_and_order() -> None:
    trace = inference.trace({"rate": 0.5})
    assert list(trace.invocations) == ["first_load", "train"]
    invocation = trace.invocations["train"]
    assert invocation.parameters == {"rate": 0.5}  # the reference is no parameter
    assert invocation.artifacts == {
        "dataset": ArtifactSelector(artifact_name="clf", from_run_model=True)
    }
    assert invocation.upstream == ["first_load"]


def test_get_pipeline_context_outside_a_body_is_a_clear_error() -> None:
    with pytest.raises(DefinitionError, match="outside a pipeline body"):
        get_pipeline_context()


def test_after_naming_an_unknown_invocation_is_refused() -> None:
    @pipeline
    def ordered() -> None:
        load(after=["missing"])

    with pytest.raises(DefinitionError, match=r"after='missing' names no earlier invocation"):
        ordered.trace({})


@pipeline
def features(n: int = 4) -> Any:
    return load(n=n)


@pipeline
def training(
    dataset_id: uuid.UUID | None = None, train_rate: float = 0.2
) -> None:  # dataset_id: as ZenML templates take artifact ids
    assert dataset_id is None or isinstance(dataset_id, uuid.UUID)
    dataset = features(n=5)  # a pipeline inside a pipeline adds its steps
    train(dataset, rate=train_rate)


def test_a_pipeline_called_in_a_pipeline_composes_and_uuid_parameters_are_recorded_as_text() -> (
    None
):
    identifier = uuid.uuid4()
    parameters = training.bind_parameters((), {"dataset_id": identifier})
    assert parameters["dataset_id"] == str(identifier)
    trace = training.trace(parameters)
    assert list(trace.invocations) == ["load", "train"]
    assert trace.invocations["load"].parameters == {"n": 5}
    assert trace.invocations["train"].upstream == ["load"]


def test_with_options_parameters_are_defaults_that_call_arguments_override() -> None:
    tuned = train.with_options(parameters={"rate": 0.9})

    @pipeline
    def tuning() -> None:
        data = load()
        tuned(data)
        tuned(data, rate=0.1)

    trace = tuning.trace({})
    assert trace.invocations["train"].parameters == {"rate": 0.9}
    assert trace.invocations["train_2"].parameters == {"rate": 0.1}
    assert tuned.options.recordable()["parameters"] == {"rate": 0.9}
    with pytest.raises(DefinitionError, match="names 'speed', which the step does not take"):
        train.with_options(parameters={"speed": 1})


# options that ZenML has and mlops_lite records -------------------------------------------


def test_settings_are_recorded_with_one_warning_per_kind() -> None:
    with pytest.warns(CompatibilityWarning, match="settings 'docker' are recorded") as caught:
        configured = train.with_options(settings={"docker": {"requirements": ["x"]}})
        train.with_options(settings={"docker": {"requirements": ["y"]}})
    assert len(caught) == 1
    assert configured.options.recordable()["settings"] == {"docker": {"requirements": ["x"]}}
    with pytest.warns(CompatibilityWarning, match="'experiment_tracker' is recorded"):
        tracked = train.with_options(experiment_tracker="mlflow")
    assert tracked.options.extra == {"experiment_tracker": "mlflow"}


def test_a_configuration_with_settings_model_extra_and_hooks_applies_to_pipeline_and_steps() -> (
    None
):
    content = {
        "settings": {"docker": {"required_integrations": ["sklearn"]}},
        "model": {"name": "churn", "version": "production"},
        "extra": {"notify_on_failure": True},
        "failure_hook_source": "tests.unit.test_zenml_surface.hook_for_tests",
        "enable_artifact_metadata": True,
        "steps": {"train": {"settings": {"resources": {"cpu_count": 2}}, "parameters": {}}},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configured = configure(inference, content)
        trace = configured.trace({"rate": 0.5})
    messages = " ".join(str(w.message) for w in caught)
    assert "settings 'docker'" in messages
    # A step's resources place it (pool, Dask): checked, never called "no effect".
    assert "settings 'resources'" not in messages
    assert "enable_artifact_metadata is recorded with the run but has no effect" in messages
    options = configured.options
    assert options.model is not None and options.model.name == "churn"
    assert options.extra == {"notify": True, "notify_on_failure": True}
    assert options.settings == {"docker": {"required_integrations": ["sklearn"]}}
    step_options = trace.invocations["train"].step.options
    assert step_options.settings == {"resources": {"cpu_count": 2}}
    assert step_options.on_failure == "tests.unit.test_zenml_surface.hook_for_tests"


calls: list[Any] = []


def hook_for_tests(exception: BaseException) -> None:
    calls.append(exception)


def test_hooks_get_the_exception_when_they_take_one_and_their_errors_are_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = ValueError("boom")
    path = "tests.unit.test_zenml_surface.hook_for_tests"
    run_hook(path, "on_failure", error)  # a "module.function" path, as in ZenML's YAML
    assert importlib.import_module(path.rpartition(".")[0]).calls[-1] is error

    def no_argument() -> None:
        raise RuntimeError("hook broke")

    run_hook(no_argument, "on_success")
    assert "the on_success hook" in capsys.readouterr().err
    assert hook_name(no_argument).endswith("no_argument")  # type: ignore[union-attr]


def test_a_step_without_a_model_says_how_to_give_it_one() -> None:
    from mlops_lite.definition.context import StepContext

    context = StepContext(run_name="r", step_name="train", pipeline_name="p", cache_key="0" * 32)
    with pytest.raises(DefinitionError, match="step 'train' has no model: give the step or its"):
        context.model
    assert context.pipeline.name == "p" and context.step_run.name == "train"
    assert context.pipeline_run.id == context.pipeline_run.id  # derived, stable
