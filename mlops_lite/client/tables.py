"""Runs side by side: pages of a filtered listing, and tables of parameters and metrics.

What ``runs list --columns``, ``runs compare`` and the dashboard show, computed once.
A listing's columns come from the run index (no record is read per listed run);
a comparison reads each run in full, so it also shows metadata added after the run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_lite.core.columns import Column, run_columns

if TYPE_CHECKING:
    from mlops_lite.client.views import Run

__all__ = ["MISSING", "RunPage", "RunTable", "compare_runs"]


class _Missing:
    """The value of a column a run does not have."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""What ``RunTable.value`` returns for a column the run does not have."""


@dataclass
class RunTable:
    """Runs (rows) by parameters and metrics (columns)."""

    runs: list[Run]
    columns: list[Column]
    values: list[dict[Column, Any]] = field(default_factory=list)

    def value(self, row: int, column: Column) -> Any:
        """One cell: the run's value, or ``MISSING``."""
        return self.values[row].get(column, MISSING)

    def column_values(self, column: Column) -> list[Any]:
        """One column, a value (or ``MISSING``) per run."""
        return [self.value(row, column) for row in range(len(self.runs))]

    def differs(self, column: Column) -> bool:
        """Whether the runs disagree on ``column`` (1 and 1.0 differ; a missing value differs)."""
        return len({(type(v), repr(v)) for v in self.column_values(column)}) > 1

    def differing_columns(self) -> list[Column]:
        """The columns whose values are not the same in every run."""
        return [column for column in self.columns if self.differs(column)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: each run with its values by column name (missing ones left out)."""
        return {
            "columns": [column.name for column in self.columns],
            "differing": [column.name for column in self.differing_columns()],
            "runs": [
                {
                    "sha": run.sha,
                    "pipeline": run.pipeline_name,
                    "name": run.name,
                    "status": run.status,
                    "values": {
                        column.name: values[column] for column in self.columns if column in values
                    },
                }
                for run, values in zip(self.runs, self.values, strict=True)
            ],
        }

    def to_csv(self) -> str:
        """One line per run: sha, pipeline, name, status, then a cell per column."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["sha", "pipeline", "run", "status", *(c.name for c in self.columns)])
        for row, run in enumerate(self.runs):
            cells = [self.value(row, column) for column in self.columns]
            writer.writerow(
                [
                    run.sha,
                    run.pipeline_name,
                    run.name,
                    run.status,
                    *("" if cell is MISSING or cell is None else cell for cell in cells),
                ]
            )
        return buffer.getvalue()


@dataclass
class RunPage:
    """One page of a filtered run listing, and how many runs the filter selects in all."""

    runs: list[Run]
    total: int
    offset: int
    limit: int | None

    @property
    def has_next(self) -> bool:
        """Whether runs follow this page."""
        return self.limit is not None and self.offset + len(self.runs) < self.total


def _union(tables: Iterable[dict[Column, Any]]) -> list[Column]:
    seen: dict[Column, None] = {}
    for values in tables:
        seen.update(dict.fromkeys(values))
    return list(seen)


def compare_runs(runs: Sequence[Run], columns: Sequence[Column] | None = None) -> RunTable:
    """Every parameter and metric of ``runs`` (or only ``columns``), read from the runs in full.

    Metrics include each step's metadata and metadata added after the run. An
    unreadable run has no values: its ``error`` says why.
    """
    values = [
        run_columns(
            run.parameters,
            run.metadata,
            ((step.name, step.metadata) for step in run.steps.values()),
        )
        if run.readable
        else {}
        for run in runs
    ]
    if columns is not None:
        return RunTable(list(runs), list(columns), values)
    chosen = [column for column in _union(values) if not _repeats(column, values)]
    # Parameters first, then metrics, each in the order the runs have them.
    chosen.sort(key=lambda column: column.kind != "param")
    return RunTable(list(runs), chosen, values)


def _repeats(column: Column, values: list[dict[Column, Any]]) -> bool:
    """Whether ``metric:STEP.NAME`` only repeats ``metric:NAME`` in every run."""
    _, dot, key = column.key.partition(".")
    if column.kind != "metric" or not dot:
        return False
    plain = Column("metric", key)
    return all(
        column not in row or (plain in row and repr(row[plain]) == repr(row[column]))
        for row in values
    )
