"""A run's parameters and metrics as flat, named values: the columns of listings and comparisons.

``param:NAME`` is a pipeline parameter; ``metric:NAME`` is the run's metadata
``NAME``, else the value logged as ``NAME`` by the last step, in pipeline order,
that logged it; ``metric:STEP.NAME`` is one step's value. Nested mappings are
flattened with dots (``param:optimizer.lr``). Only scalars become columns
(None, booleans, numbers, strings of at most ``MAX_TEXT`` characters): lists,
bytes and long texts stay on the run's own page. The same function computes the
values for the run index (100,000 runs) and for ``runs compare`` (a few runs read
in full), so both show the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from mlops_lite.errors import ConfigError

__all__ = [
    "KINDS",
    "MAX_COLUMNS",
    "MAX_TEXT",
    "Column",
    "ColumnKind",
    "is_number",
    "parse_columns",
    "run_columns",
]

ColumnKind = Literal["param", "metric"]
KINDS: Final[tuple[ColumnKind, ...]] = get_args(ColumnKind)

MAX_TEXT: Final = 200
"""Longer strings are not columns: a table cell is no place for them."""

MAX_COLUMNS: Final = 500
"""At most this many values per run reach the index, the first in record order."""

_EXAMPLE: Final = "e.g. param:lr,metric:accuracy"


@dataclass(frozen=True, order=True, slots=True)
class Column:
    """One named value of runs: a parameter or a metric."""

    kind: ColumnKind
    key: str

    @property
    def name(self) -> str:
        """``kind:key``, as written on the command line and stored in the index."""
        return f"{self.kind}:{self.key}"

    @classmethod
    def parse(cls, text: str) -> Column:
        """A column from ``param:NAME`` or ``metric:NAME``; ConfigError for anything else."""
        kind, separator, key = text.strip().partition(":")
        if not separator or kind not in KINDS or not key.strip():
            raise ConfigError(
                f"column {text.strip()!r}: write param:NAME or metric:NAME ({_EXAMPLE})"
            )
        return cls(kind, key.strip())  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.name


def parse_columns(spec: str | Iterable[str]) -> list[Column]:
    """Columns from ``"param:lr,metric:accuracy"`` (or a list of such), duplicates dropped."""
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    columns: list[Column] = []
    for part in parts:
        if part.strip():
            column = Column.parse(part)
            if column not in columns:
                columns.append(column)
    return columns


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool) that can be compared and plotted."""
    return type(value) in (int, float) and not (type(value) is float and math.isnan(value))


def _is_scalar(value: Any) -> bool:
    if value is None or type(value) in (bool, int, float):
        return True
    return type(value) is str and len(value) <= MAX_TEXT


def _flatten(mapping: Mapping[Any, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, name + ".")
        elif _is_scalar(value):
            yield name, value


def run_columns(
    parameters: Mapping[Any, Any],
    metadata: Mapping[Any, Any],
    step_metadata: Iterable[tuple[str, Mapping[Any, Any]]],
) -> dict[Column, Any]:
    """The columns of one run: its parameters, run metadata and steps' metadata (in order)."""
    columns: dict[Column, Any] = {}
    for key, value in _flatten(parameters):
        columns[Column("param", key)] = value
    run_level = dict(_flatten(metadata))
    by_step: dict[str, Any] = {}
    qualified: dict[Column, Any] = {}
    for step, values in step_metadata:
        for key, value in _flatten(values):
            by_step[key] = value  # a later step wins: pipeline order
            qualified[Column("metric", f"{step}.{key}")] = value
    for key, value in {**by_step, **run_level}.items():
        columns[Column("metric", key)] = value
    for column, value in qualified.items():
        columns.setdefault(column, value)
    if len(columns) > MAX_COLUMNS:
        columns = dict(list(columns.items())[:MAX_COLUMNS])
    return columns
