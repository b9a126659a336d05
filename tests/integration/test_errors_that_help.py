"""Every error names what went wrong and what to do next (issue 10, items 7-8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pytest

from mlops_lite import Client, pipeline, step
from mlops_lite.errors import (
    ArtifactNotFoundError,
    DefinitionError,
    OutputTypeError,
    PipelineNotFoundError,
    RemoteRejectedError,
    StepFailedError,
    StepNotFoundError,
    UnrecordableParameterError,
)
from mlops_lite.execution.environment import _installed_packages
from mlops_lite.operations import sharing
from tests.conftest import git, run_script


@step
def make(n: int = 3) -> Annotated[list[int], "numbers"]:
    return list(range(n))


@step
def train(numbers: list[int], scale: int = 1) -> Annotated[int, "total"]:
    return sum(numbers) * scale


@pipeline
def training(batch: int = 3) -> None:
    train(make(n=batch))


def test_missing_step_and_output_are_key_errors_that_list_names_and_suggest(
    project: Path,
) -> None:
    run = training()

    with pytest.raises(StepNotFoundError) as missing_step:
        run.steps["trian"]
    assert isinstance(missing_step.value, KeyError)
    message = str(missing_step.value)
    assert "did you mean 'train'?" in message and "steps: make, train" in message
    assert run.name in message

    with pytest.raises(KeyError) as missing_output:
        run.steps["train"].outputs["totl"]
    assert isinstance(missing_output.value, ArtifactNotFoundError)
    assert "did you mean 'total'?" in str(missing_output.value)
    assert "outputs: total" in str(missing_output.value)
    assert run.steps.get("nope") is None  # dict behaviour stays


def test_listing_runs_of_a_misspelt_pipeline_is_an_error_with_a_suggestion(project: Path) -> None:
    training()
    with Client() as client, pytest.raises(PipelineNotFoundError, match="did you mean 'training'"):
        client.list_pipeline_runs(pipeline="trainig")
    cli = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "runs", "list", "--pipeline", "trainig"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cli.returncode == 1
    assert "did you mean 'training'" in cli.stderr and "no runs recorded yet" not in cli.stdout


def test_wrong_pipeline_arguments_say_where_parameters_come_from(project: Path) -> None:
    @pipeline
    def needs(lr: float) -> None:
        make()

    with pytest.raises(DefinitionError) as missing:
        needs()
    assert "missing a required argument: 'lr'" in str(missing.value)
    assert "configuration file" in str(missing.value) and "--param" in str(missing.value)

    with pytest.raises(DefinitionError, match="did you mean 'batch'"):
        training(bacth=3)


def test_param_typo_on_the_command_line_gets_did_you_mean(project: Path) -> None:
    (project / "pipe.py").write_text(
        "from mlops_lite import pipeline, step\n"
        "@step\ndef one(batch: int) -> int:\n    return batch\n"
        "@pipeline\ndef p(batch: int = 1):\n    one(batch=batch)\n"
    )
    cli = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "run", "pipe.py:p", "--param", "bacth=3"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stderr
    assert "did you mean 'batch'?" in cli.stderr


def test_a_dataframe_parameter_gets_a_hint_to_load_it_in_a_step(project: Path) -> None:
    pandas = pytest.importorskip("pandas")
    with pytest.raises(UnrecordableParameterError) as error:
        training(batch=pandas.DataFrame({"a": [1]}))
    assert "DataFrame" in str(error.value) and "load it inside a step" in str(error.value)


@step
def count(text: str) -> Annotated[int, "count"]:
    return text  # type: ignore[return-value]  # the mistake under test


@step
def pair() -> tuple[Annotated[list[int], "xs"], Annotated[dict[str, int], "named"]]:
    return [1], [("a", 1)]  # type: ignore[return-value]


@step
def loose() -> Annotated[Any, "anything"]:
    return object.__new__(object)


T = TypeVar("T")


@step
def numeric() -> tuple[Annotated[float, "ratio"], Annotated[int, "n"], Annotated[T, "t"]]:  # type: ignore[type-var]
    numpy = pytest.importorskip("numpy")
    return numpy.float32(0.5), numpy.int64(3), "whatever"


def test_an_output_of_the_wrong_type_fails_the_step_naming_output_and_types(
    project: Path,
) -> None:
    @pipeline
    def counting() -> None:
        count("three")

    with pytest.raises(StepFailedError) as failed:
        counting()
    cause = failed.value.__cause__
    assert isinstance(cause, OutputTypeError)
    assert "step 'count', output 'count': declared int but the step returned str" in str(cause)
    run = Client().get_pipeline("counting").last_run
    assert run.status == "failed" and run.steps["count"].outputs == {}

    @pipeline
    def pairing() -> None:
        pair()

    with pytest.raises(StepFailedError) as generic:
        pairing()
    assert "output 'named': declared dict[str, int] but the step returned list" in str(
        generic.value.__cause__
    )


def test_any_numbers_and_unresolvable_annotations_pass(project: Path) -> None:
    @pipeline
    def lenient() -> None:
        loose()
        numeric()

    run = lenient()
    assert run.status == "completed"


def test_shallow_clone_push_advice_says_to_unshallow(project: Path, tmp_path: Path) -> None:
    (project / "a.txt").write_text("a\n")
    git(project, "add", "a.txt")
    git(project, "commit", "-q", "-m", "second")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{project}", str(shallow))
    runs_remote = tmp_path / "runs.git"
    git(tmp_path, "init", "-q", "--bare", str(runs_remote))
    (shallow / "p.py").write_text(
        "from mlops_lite import pipeline, step\n"
        "@step\ndef one() -> int:\n    return 1\n"
        "@pipeline\ndef p():\n    one()\n"
        "p()\n"
    )
    git(shallow, "add", "p.py")
    git(shallow, "commit", "-q", "-m", "pipeline")
    run_script(shallow, "p.py")

    with pytest.raises(RemoteRejectedError) as rejected:
        sharing.push(str(runs_remote), path=shallow, transport="git")
    assert "git fetch --unshallow" in str(rejected.value)
    assert "mlops-lite pull" not in str(rejected.value)


def test_editable_checkout_metadata_does_not_hide_the_installed_version(tmp_path: Path) -> None:
    checkout, site = tmp_path / "checkout", tmp_path / "site"
    (checkout / "mlops_lite.egg-info").mkdir(parents=True)
    (checkout / "stale.egg-info").mkdir()  # no version anywhere: not a distribution
    (checkout / "mlops_lite.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: mlops-lite\nVersion: 0.1.0\n\nlong description\n"
    )
    (site / "mlops_lite-0.1.0.dist-info").mkdir(parents=True)
    (site / "stale-2.0.dist-info").mkdir()

    packages = _installed_packages([str(checkout), str(site)])

    assert packages["mlops-lite"] == "0.1.0"
    assert packages["stale"] == "2.0"


def test_a_run_from_an_editable_install_records_the_real_version(project: Path) -> None:
    import mlops_lite

    (project / "p.py").write_text(
        "from mlops_lite import pipeline, step\n"
        "@step\ndef one() -> int:\n    return 1\n"
        "@pipeline\ndef p():\n    one()\n"
        "print(p().environment['packages'].get('mlops-lite'))\n"
    )
    # The test interpreter imports mlops_lite from the checkout (PYTHONPATH), beside
    # which an editable install leaves mlops_lite.egg-info.
    completed = run_script(project, "p.py")
    assert completed.stdout.strip() == mlops_lite.__version__ != ""


def test_without_any_git_identity_runs_are_recorded_under_the_login_name(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass
    import socket

    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)
    run = training()
    login = getpass.getuser()
    assert run.author == {"name": login, "email": f"{login}@{socket.gethostname()}"}
    git(project, "fsck", "--strict", "--no-dangling")
