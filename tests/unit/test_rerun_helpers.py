"""The pure parts of rerun and run: comparing values and environments, --param, main guards."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from mlops_lite.errors import ConfigError
from mlops_lite.operations.compare import max_abs_difference
from mlops_lite.operations.entrypoints import _is_main_guard, load_pipeline, parse_parameters
from mlops_lite.operations.rerun import environment_differences


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, 3, 2.0),
        (0.5, 0.25, 0.25),
        (np.float32(1.5), 1, 0.5),
        (np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 1.0]), 2.0),
        (
            np.array([1, 2], dtype=np.uint8),
            np.array([3, 0], dtype=np.uint8),
            2.0,
        ),  # no uint wrap-around
        (np.zeros((0, 3)), np.zeros((0, 3)), 0.0),
        ([1, 2.5], [1, 2.0], 0.5),
        (np.array([1.0]), np.array([1.0, 2.0]), None),  # shapes differ
        (np.array(["a"]), np.array(["b"]), None),
        ("a", "b", None),
        ({"x": 1}, {"x": 2}, None),
    ],
)
def test_largest_absolute_difference_of_numbers_and_arrays(
    a: object, b: object, expected: float | None
) -> None:
    assert max_abs_difference(a, b) == expected


def test_environment_differences_cover_python_and_recorded_packages_only() -> None:
    recorded = {
        "python": "3.11.7",
        "implementation": "CPython",
        "packages": {"numpy": "2.0.0", "gone": "1.0"},
    }
    current = {
        "python": "3.12.1",
        "implementation": "CPython",
        "packages": {"numpy": "2.1.0", "extra": "9"},
    }
    assert environment_differences(recorded, current) == [
        "Python 3.11.7 made the run; 3.12.1 here",
        "package gone: 1.0 made the run; not installed here",
        "package numpy: 2.0.0 made the run; 2.1.0 here",
    ]
    assert environment_differences(recorded, recorded) == []


def test_params_are_json_when_they_parse_and_strings_otherwise() -> None:
    items = ["n=3", "rate=0.5", "on=true", "layers=[8, 4]", "name=adam", "path=a=b", "empty="]
    assert parse_parameters(items) == {
        "n": 3, "rate": 0.5, "on": True, "layers": [8, 4],
        "name": "adam", "path": "a=b", "empty": "",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="write name=value"):
        parse_parameters(["n"])


@pytest.mark.parametrize(
    ("source", "is_guard"),
    [
        ('if __name__ == "__main__":\n    main()', True),
        ("if '__main__' == __name__:\n    main()", True),
        ('if __name__ != "__main__":\n    pass', False),
        ("if DEBUG:\n    pass", False),
        ("x = 1", False),
    ],
)
def test_main_guards_are_recognised(source: str, is_guard: bool) -> None:
    assert _is_main_guard(ast.parse(source).body[0]) is is_guard


@pytest.mark.parametrize("target", ["train.py", ":training", "train.py:"])
def test_targets_without_a_pipeline_name_are_rejected(target: str) -> None:
    with pytest.raises(ConfigError, match="<module_or_file>:<pipeline>"):
        load_pipeline(target)


def test_strict_env_travels_to_the_rerun_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_lite.execution import reproduction

    env = reproduction.environment_for(reproduction.Reproduction(strict_env=True))
    assert env[reproduction.STRICT_ENV] == "1"
    monkeypatch.setenv(reproduction.STRICT_ENV, env[reproduction.STRICT_ENV])
    assert reproduction.current().strict_env is True
    monkeypatch.delenv(reproduction.STRICT_ENV)
    assert reproduction.current().strict_env is None
