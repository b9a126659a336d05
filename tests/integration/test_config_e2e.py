"""Run configuration files end to end: scripts and `mlops-lite run` in real git repositories."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import git, run_script

from mlops_lite import Client

PIPELINE = textwrap.dedent(
    """
    import random
    import sys
    from typing import Annotated

    from mlops_lite import pipeline, step

    @step
    def load(n: int = 3, scale: float = 1.0) -> Annotated[list, "rows"]:
        return [i * scale for i in range(n)]

    @step
    def train(rows: list, rate: float = 0.1) -> Annotated[float, "loss"]:
        return sum(rows) * rate + random.random()

    @pipeline
    def training(n: int = 3, label: str = "default") -> None:
        train(load(n=n))

    if __name__ == "__main__":
        config = sys.argv[1] if len(sys.argv) > 1 else None
        configured = training.with_options(config_path=config) if config else training
        print(configured().sha)
    """
)

CONFIG_YAML = textwrap.dedent(
    """
    run_name: "{pipeline}-nightly-{stamp}"
    seed: true
    parameters:
      n: 5
      label: from-config
    steps:
      load:
        parameters: {scale: 2.0}
        enable_cache: false
      train:
        parameters: {rate: 0.5}
    """
)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def last_line(completed: subprocess.CompletedProcess[str]) -> str:
    return completed.stdout.strip().splitlines()[-1]


def mlops_refs(root: Path) -> list[str]:
    return git(root, "for-each-ref", "--format=%(refname)", "refs/mlops/").splitlines()


@pytest.fixture
def committed(project: Path) -> Path:
    (project / "train.py").write_text(PIPELINE)
    (project / "config.yaml").write_text(CONFIG_YAML)
    git(project, "add", "train.py", "config.yaml")
    git(project, "commit", "-q", "-m", "pipeline and config")
    return project


def test_config_file_drives_parameters_and_is_recorded(committed: Path) -> None:
    sha = last_line(run_script(committed, "train.py", "config.yaml"))

    with Client(committed) as client:
        run = client.get_pipeline_run(sha)
        assert run.parameters == {"n": 5, "label": "from-config"}
        assert run.steps["load"].parameters == {"n": 5, "scale": 2.0}
        assert run.steps["train"].parameters == {"rate": 0.5}
        assert run.steps["load"].output.load() == [0.0, 2.0, 4.0, 6.0, 8.0]
        assert run.name.startswith("training-nightly-")
        assert run.record.config == {
            "run_name": "{pipeline}-nightly-{stamp}",
            "seed": True,
            "parameters": {"n": 5, "label": "from-config"},
            "steps": {
                "load": {"parameters": {"scale": 2.0}, "enable_cache": False},
                "train": {"parameters": {"rate": 0.5}},
            },
        }


def test_cli_run_with_toml_config_and_params_that_win_over_it(committed: Path) -> None:
    (committed / "config.toml").write_text(
        "[parameters]\nn = 4\nlabel = 'toml'\n[steps.train.parameters]\nrate = 0.25\n"
    )

    completed = cli(
        committed, "run", "train.py:training", "--config", "config.toml", "--param", "n=2", "--json"
    )

    assert completed.returncode == 0, completed.stderr
    run = json.loads(completed.stdout)
    assert run["parameters"] == {"n": 2, "label": "toml"}
    assert run["steps"]["train"]["parameters"] == {"rate": 0.25}
    with Client(committed) as client:
        assert client.get_pipeline_run(run["sha"]).record.config["parameters"] == {
            "n": 4,
            "label": "toml",
        }


def test_enable_cache_false_for_one_step_in_the_config(committed: Path) -> None:
    run_script(committed, "train.py", "config.yaml")
    second = last_line(run_script(committed, "train.py", "config.yaml"))

    with Client(committed) as client:
        steps = client.get_pipeline_run(second).steps
        assert not steps["load"].cached
        assert steps["train"].cached


def test_seed_in_the_config_makes_a_random_step_reproducible(committed: Path) -> None:
    (committed / "seeded.toml").write_text("enable_cache = false\nseed = true\n")
    (committed / "unseeded.toml").write_text("enable_cache = false\n")

    def loss(config: str) -> float:
        sha = last_line(run_script(committed, "train.py", config))
        with Client(committed) as client:
            return float(client.get_pipeline_run(sha).steps["train"].output.load())

    assert loss("seeded.toml") == loss("seeded.toml")
    assert loss("unseeded.toml") != loss("unseeded.toml")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("paramters:\n  n: 1\n", "unknown key 'paramters'; did you mean 'parameters'?"),
        ("steps:\n  evaluate: {}\n", "steps.evaluate: pipeline 'training' has no step 'evaluate'"),
        ("parameters:\n  n: many\n", "parameters.n: pipeline 'training' declares int"),
        (
            "steps:\n  train:\n    parameters: {rate: fast}\n",
            "steps.train.parameters.rate: step 'train' declares float",
        ),
    ],
)
def test_bad_config_is_a_clear_error_and_records_nothing(
    committed: Path, config: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Strict: an unknown key is an error too (by default it is ignored, with a warning).
    monkeypatch.setenv("MLOPS_LITE_STRICT_CONFIG", "1")
    (committed / "bad.yaml").write_text(config)
    run_script(committed, "train.py")
    refs = mlops_refs(committed)

    completed = cli(committed, "run", "train.py:training", "--config", "bad.yaml")
    script = run_script(committed, "train.py", "bad.yaml", check=False)

    assert completed.returncode == 2
    assert "bad.yaml" in completed.stderr and message in completed.stderr
    assert script.returncode != 0 and message in script.stderr
    assert mlops_refs(committed) == refs


def test_rerun_of_a_configured_run_applies_the_recorded_config(committed: Path) -> None:
    sha = json.loads(
        cli(committed, "run", "train.py:training", "--config", "config.yaml", "--json").stdout
    )["sha"]
    # The file changes afterwards; the rerun uses what was recorded.
    (committed / "config.yaml").write_text("parameters: {n: 1}\n")

    completed = cli(committed, "rerun", sha, "--json")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    with Client(committed) as client:
        original = client.get_pipeline_run(sha)
        reproduction = client.get_pipeline_run(json.loads(completed.stdout)["rerun_sha"])
        assert reproduction.record.config == original.record.config
        assert reproduction.parameters == original.parameters
        assert reproduction.name.startswith("training-nightly-")


def test_run_target_errors_are_usage_errors(committed: Path) -> None:
    assert cli(committed, "run", "train.py").returncode == 2
    missing = cli(committed, "run", "train.py:evaluation")
    assert missing.returncode == 2 and "its pipelines: training" in missing.stderr
    assert cli(committed, "run", "train.py:training", "--param", "novalue").returncode == 2
