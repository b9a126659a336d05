"""``log_metadata()``: metadata for the running step, the run being defined, or a recorded run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlops_lite.core.values import is_recordable
from mlops_lite.definition.context import current_step_context
from mlops_lite.definition.tracing import current_trace
from mlops_lite.errors import DefinitionError, UnrecordableParameterError

__all__ = ["log_metadata"]


def _plain(value: Any) -> Any:
    """Numpy scalars (a loss, an accuracy) as the Python numbers they stand for."""
    if (
        type(value).__module__ == "numpy"
        and hasattr(value, "item")
        and getattr(value, "ndim", 1) == 0
    ):
        return value.item()
    return value


def log_metadata(
    metadata: Mapping[str, Any],
    *,
    run_id_name_or_prefix: str | None = None,
    step_name: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Attach JSON-like metadata to a step or a run.

    Inside a step it lands on that step; inside a ``@pipeline`` function body it
    lands on the run. Anywhere, ``run_id_name_or_prefix`` (a run name, sha or
    sha prefix, as in ZenML) names a recorded run to annotate, and ``step_name``
    one of its steps; ``path`` is where to look for the repository. Values merge
    over earlier ones with the same key.
    """
    metadata = {key: _plain(value) for key, value in metadata.items()}
    for key, value in metadata.items():
        if not isinstance(key, str) or not is_recordable(value):
            raise UnrecordableParameterError(
                f"metadata {key!r}: a value of type {type(value).__qualname__} cannot be recorded; "
                "use JSON-like values (numbers, strings, lists, dicts)"
            )
    if run_id_name_or_prefix is not None:
        from mlops_lite.operations.annotate import annotate_run

        annotate_run(run_id_name_or_prefix, metadata, step_name=step_name, path=path)
        return
    if step_name is not None:
        raise DefinitionError("log_metadata(step_name=...) needs run_id_name_or_prefix=... too")
    context = current_step_context()
    if context is not None:
        context.metadata.update(metadata)
        return
    trace = current_trace()
    if trace is not None:
        trace.run_metadata.update(metadata)
        return
    raise DefinitionError(
        "log_metadata() was called outside a step and outside a pipeline definition; call it "
        "inside a @step function, inside the @pipeline function body for run metadata, or give "
        "run_id_name_or_prefix=... to annotate a recorded run"
    )
