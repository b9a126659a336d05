"""Run configurations without git: loading, checking shape and against a pipeline, applying."""

from __future__ import annotations

import datetime
import json
import random
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import pytest

from mlops_lite import pipeline, step
from mlops_lite.definition.config import (
    ConfiguredPipeline,
    configure,
    load_config_file,
    matches_annotation,
    parse_config,
)
from mlops_lite.errors import CompatibilityWarning, ConfigError
from mlops_lite.execution.cache import cache_enabled


@step
def load(n: int = 3, scale: float = 1.0) -> list:
    return [i * scale for i in range(n)]


@step
def train(
    rows: list, rate: float = 0.1, layers: list[int] | None = None
) -> Annotated[float, "loss"]:
    return sum(rows) * rate + random.random()


@step(seed=False)
def report(loss: float) -> str:
    return f"{loss:.3f}"


@pipeline
def training(n: int = 3, label: str = "x") -> None:
    report(train(load(n=n)))


def traced(
    content: dict[str, Any], *args: Any, **kwargs: Any
) -> tuple[ConfiguredPipeline, Any, dict[str, Any]]:
    configured = configure(training, content)
    assert isinstance(configured, ConfiguredPipeline)
    parameters = configured.bind_parameters(args, kwargs)
    return configured, configured.trace(parameters), parameters


# the shape of a configuration ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"steps": ["train"]}, "steps must be a mapping"),
        ({"enable_cache": "no"}, "enable_cache must be true or false, got a string 'no'"),
        ({"steps": {"train": {"seed": 1}}}, "steps.train.seed must be true or false"),
        ({"run_name": "nightly-{user}"}, "uses {user}; the placeholders are {date}"),
        ({"run_name": "a b {stamp}"}, "cannot be part of a git ref"),
        ({"run_name": "{stamp"}, "is not a valid template"),
        ({"parameters": {"when": datetime.date(2024, 1, 1)}}, "dates and times are not supported"),
    ],
)
def test_malformed_configuration_is_rejected_naming_the_key(
    content: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(content, source="config.yaml")


UNKNOWN_KEYS = [
    ({"paramters": {}}, "unknown key 'paramters'; did you mean 'parameters'?"),
    ({"steps": {"train": {"enable_cahce": False}}}, "unknown key steps.train.'enable_cahce'"),
]


@pytest.mark.parametrize(("content", "message"), UNKNOWN_KEYS)
def test_unknown_keys_warn_with_the_closest_key_and_are_ignored(
    content: dict[str, Any], message: str
) -> None:
    # ZenML ignores keys it does not know; a typo still deserves a pointer.
    with pytest.warns(CompatibilityWarning, match=re.escape(message)) as caught:
        config = parse_config(content, source="config.yaml")
    assert "MLOPS_LITE_STRICT_CONFIG=1" in str(caught[0].message)
    assert config.parameters == {}


@pytest.mark.parametrize(("content", "message"), UNKNOWN_KEYS)
def test_strict_mode_makes_unknown_keys_errors(
    content: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_LITE_STRICT_CONFIG", "1")
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(content, source="config.yaml")


def test_sections_may_be_empty() -> None:
    config = parse_config({"parameters": None, "steps": {"train": None}})
    assert config.parameters == {}
    assert config.steps["train"].parameters == {}


# loading files -------------------------------------------------------------


def test_toml_yaml_and_json_files_load_to_the_same_content(tmp_path: Path) -> None:
    expected = {
        "run_name": "r-{stamp}",
        "parameters": {"n": 5},
        "steps": {"train": {"parameters": {"rate": 0.5}}},
    }
    (tmp_path / "c.toml").write_text(
        'run_name = "r-{stamp}"\n[parameters]\nn = 5\n[steps.train.parameters]\nrate = 0.5\n'
    )
    (tmp_path / "c.yaml").write_text(
        "run_name: r-{stamp}\nparameters: {n: 5}\nsteps:\n  train:\n    parameters: {rate: 0.5}\n"
    )
    (tmp_path / "c.json").write_text(json.dumps(expected))
    for name in ("c.toml", "c.yaml", "c.json"):
        assert load_config_file(tmp_path / name) == expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.toml", "parameters = [", "not valid TOML"),
        ("c.yaml", "parameters: [1, 2", "not valid YAML"),
        ("c.ini", "[x]", "unknown format '.ini'"),
        ("c.yaml", "- 1\n- 2\n", "top level must be a mapping"),
    ],
)
def test_unreadable_files_name_the_file_and_the_problem(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config_file(tmp_path / name)
    assert name in str(caught.value)


def test_missing_file_says_where_relative_paths_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found .*working directory"):
        load_config_file(tmp_path / "nope.yaml")


# annotations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation", "fits"),
    [
        (1, int, True),
        (True, int, False),
        (1, float, True),
        (1.5, int, False),
        ("a", str, True),
        (1, str, False),
        (None, Optional[int], True),  # noqa: UP045 - the old spelling is what users write too
        (None, int | None, True),
        ("a", Union[int, str], True),  # noqa: UP007
        ([1, 2], list[int], True),
        ([1, "a"], list[int], False),
        ([1, 2], tuple[int, int], True),
        ([1, 2, 3], tuple[int, int], False),
        ({"a": 1}, dict[str, int], True),
        ({"a": "b"}, dict[str, int], False),
        ("adam", Literal["adam", "sgd"], True),
        ("rmsprop", Literal["adam", "sgd"], False),
        (3, Annotated[int, "meta"], True),
        (object(), Any, True),
    ],
)
def test_values_are_checked_against_annotations(value: Any, annotation: Any, fits: bool) -> None:
    assert matches_annotation(value, annotation) is fits


# against a pipeline -------------------------------------------------------------


def test_call_arguments_beat_the_configuration_which_beats_defaults() -> None:
    _, _, parameters = traced({"parameters": {"n": 5, "label": "config"}}, label="call")
    assert parameters == {"n": 5, "label": "call"}
    _, _, positional = traced({"parameters": {"n": 5}}, 9)
    assert positional["n"] == 9


def test_step_parameters_from_the_configuration_are_traced() -> None:
    _, trace, _ = traced({"steps": {"train": {"parameters": {"rate": 0.5, "layers": [8, 4]}}}})
    assert trace.invocations["train"].parameters == {"rate": 0.5, "layers": [8, 4]}
    assert trace.invocations["load"].parameters == {"n": 3, "scale": 1.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {"parameters": {"m": 1}},
            "parameters.m: pipeline 'training' has no parameter 'm'; its parameters are n, label",
        ),
        (
            {"parameters": {"n": "five"}},
            "parameters.n: pipeline 'training' declares int, but the configuration gives a string",
        ),
        (
            {"steps": {"trian": {}}},
            "steps.trian: pipeline 'training' has no step 'trian'; did you mean 'train'?",
        ),
        ({"steps": {"train": {"parameters": {"rat": 1}}}}, "step 'train' has no parameter 'rat'"),
        (
            {"steps": {"train": {"parameters": {"rate": "fast"}}}},
            "steps.train.parameters.rate: step 'train' declares float",
        ),
        (
            {"steps": {"train": {"parameters": {"layers": ["a"]}}}},
            "declares list\\[int\\] \\| None",
        ),
        (
            {"steps": {"train": {"parameters": {"rows": [1]}}}},
            "receives output 'output' of step 'load'.*an input",
        ),
    ],
)
def test_configuration_that_does_not_fit_the_pipeline_fails_before_running(
    content: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        traced(content)


def test_settings_in_the_file_override_the_code() -> None:
    base = training.with_options(enable_cache=True, run_name="code-{stamp}")
    configured = configure(base, {"enable_cache": False, "run_name": "file-{stamp}"})
    assert configured.options.enable_cache is False
    assert configured.options.run_name == "file-{stamp}"
    assert configured.options.config == {"enable_cache": False, "run_name": "file-{stamp}"}
    untouched = configure(base, {})
    assert untouched.options.enable_cache is True and untouched.options.run_name == "code-{stamp}"


def test_seed_per_pipeline_and_per_step() -> None:
    _, trace, _ = traced({"seed": True})
    seeds = {name: inv.step.options.seed for name, inv in trace.invocations.items()}
    # The decorator's explicit seed=False is kept; the file seeds the others.
    assert seeds == {"load": True, "train": True, "report": False}
    _, trace, _ = traced({"steps": {"train": {"seed": True}, "report": {"seed": True}}})
    seeds = {name: inv.step.options.seed for name, inv in trace.invocations.items()}
    assert seeds == {"load": None, "train": True, "report": True}


def test_enable_cache_per_step_and_the_override_for_every_step() -> None:
    _, trace, _ = traced({"steps": {"load": {"enable_cache": False}}})
    assert trace.invocations["load"].step.options.enable_cache is False
    assert trace.invocations["train"].step.options.enable_cache is None
    # The one decision: the override (rerun's MLOPS_LITE_ENABLE_CACHE) wins over a step's
    # own setting, which wins over the pipeline's.
    assert cache_enabled(pipeline=True, step=False, override=None) is False
    assert cache_enabled(pipeline=False, step=None, override=None) is False
    assert cache_enabled(pipeline=True, step=True, override=False) is False
    assert cache_enabled(pipeline=False, step=False, override=True) is True


def test_config_path_is_loaded_when_configuring(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[parameters]\nn = 7\n")
    configured = configure(training.with_options(config_path=str(path)))
    assert configured.bind_parameters((), {})["n"] == 7
    assert configured.options.config == {"parameters": {"n": 7}}
    path.write_text("[parameters]\nn = 'seven'\n")
    with pytest.raises(ConfigError, match=re.escape(f"configuration file {path}: parameters.n")):
        configure(training.with_options(config_path=str(path)))
