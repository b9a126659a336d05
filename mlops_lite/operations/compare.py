"""Comparing the outputs of two runs, by content id: what ``diff`` and ``rerun`` both report."""

from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass
from typing import Any, Literal

from mlops_lite.client import Artifact, Run
from mlops_lite.errors import MlopsLiteError

__all__ = ["OutputComparison", "OutputStatus", "compare_outputs", "max_abs_difference"]

OutputStatus = Literal["identical", "different", "removed", "added"]
"""``removed``: only run ``a`` has the output; ``added``: only run ``b``."""


@dataclass
class OutputComparison:
    """One step output of run ``a`` next to the same output of run ``b``."""

    step: str
    output: str
    status: OutputStatus
    a: str | None = None  # artifact ids
    b: str | None = None
    a_size: int | None = None
    b_size: int | None = None
    max_abs_difference: float | None = None

    @property
    def identical(self) -> bool:
        """Whether both runs hold the same content."""
        return self.status == "identical"


def compare_outputs(a: Run, b: Run, *, numeric: bool = False) -> list[OutputComparison]:
    """Every output of either run, ``a``'s steps first.

    ``numeric`` adds the largest absolute difference of differing numeric
    values (never loading a pickle).
    """
    steps_a, steps_b = a.steps, b.steps
    rows = []
    for step in [*steps_a, *(name for name in steps_b if name not in steps_a)]:
        outputs_a = steps_a[step].outputs if step in steps_a else {}
        outputs_b = steps_b[step].outputs if step in steps_b else {}
        for output in [*outputs_a, *(name for name in outputs_b if name not in outputs_a)]:
            left, right = outputs_a.get(output), outputs_b.get(output)
            status: OutputStatus
            if right is None:
                status = "removed"
            elif left is None:
                status = "added"
            else:
                status = "identical" if left.id == right.id else "different"
            row = OutputComparison(
                step, output, status,
                left.id if left else None, right.id if right else None,
                left.size if left else None, right.size if right else None,
            )  # fmt: skip
            if numeric and status == "different" and left is not None and right is not None:
                row.max_abs_difference = _numeric_difference(left, right)
            rows.append(row)
    return rows


def _numeric_difference(a: Artifact, b: Artifact) -> float | None:
    if a.uses_pickle or b.uses_pickle:
        return None  # comparing must not run code
    try:
        return max_abs_difference(a.load(), b.load())
    except MlopsLiteError:
        return None


def max_abs_difference(a: Any, b: Any) -> float | None:
    """Largest absolute difference of two numeric values (scalars, arrays, sequences), else None."""
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        return abs(float(a) - float(b))
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(a, numpy.ndarray) and isinstance(b, numpy.ndarray):
        if a.shape != b.shape or a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
            return None
        if a.size == 0:
            return 0.0
        difference = numpy.abs(a.astype(numpy.float64) - b.astype(numpy.float64))
        return float(numpy.max(difference))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) and a:
        parts = [max_abs_difference(x, y) for x, y in zip(a, b, strict=True)]
        return None if any(p is None for p in parts) else max(p for p in parts if p is not None)
    return None
