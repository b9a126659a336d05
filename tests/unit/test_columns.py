"""A run's parameters and metrics as columns: naming, resolution, what becomes a column."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_lite.core.columns import MAX_COLUMNS, MAX_TEXT, Column, parse_columns, run_columns
from mlops_lite.errors import ConfigError


def test_parameters_flatten_and_metrics_prefer_the_run_then_the_last_step() -> None:
    columns = run_columns(
        {"lr": 0.1, "optimizer": {"name": "adam", "beta": 0.9}},
        {"accuracy": 0.5},
        [("train", {"accuracy": 0.7, "loss": 2.0}), ("evaluate", {"loss": 1.0})],
    )
    assert columns[Column("param", "lr")] == 0.1
    assert columns[Column("param", "optimizer.name")] == "adam"
    assert columns[Column("metric", "accuracy")] == 0.5  # the run's own wins
    assert columns[Column("metric", "loss")] == 1.0  # the last step to log it
    assert columns[Column("metric", "train.loss")] == 2.0
    assert columns[Column("metric", "evaluate.loss")] == 1.0


def test_only_scalars_and_short_texts_become_columns() -> None:
    columns = run_columns(
        {"ids": [1, 2], "blob": b"x", "long": "x" * (MAX_TEXT + 1), "flag": True, "none": None},
        {},
        [],
    )
    assert set(columns) == {Column("param", "flag"), Column("param", "none")}


def test_a_run_gives_at_most_max_columns() -> None:
    many = {f"k{i}": i for i in range(MAX_COLUMNS + 50)}
    assert len(run_columns(many, {}, [])) == MAX_COLUMNS


def test_column_specs_parse_and_bad_ones_say_how_to_write_them() -> None:
    assert parse_columns("param:lr, metric:accuracy,param:lr") == [
        Column("param", "lr"),
        Column("metric", "accuracy"),
    ]
    assert parse_columns(["metric:train.loss", "param:a,param:b"])[0].key == "train.loss"
    for wrong in ("lr", "params:lr", "metric:", ":x"):
        with pytest.raises(ConfigError, match="param:NAME or metric:NAME"):
            parse_columns(wrong)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(st.text(max_size=5), json_like, max_size=5),
    st.dictionaries(st.text(max_size=5), json_like, max_size=5),
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=5),
            st.dictionaries(st.text(max_size=5), json_like, max_size=3),
        ),
        max_size=3,
    ),
)
def test_columns_of_any_recorded_values_are_scalars(
    parameters: dict[str, Any], metadata: dict[str, Any], steps: list[tuple[str, dict[str, Any]]]
) -> None:
    for column, value in run_columns(parameters, metadata, steps).items():
        assert column.kind in ("param", "metric")
        assert value is None or type(value) in (bool, int, float, str)
        assert not isinstance(value, str) or len(value) <= MAX_TEXT
