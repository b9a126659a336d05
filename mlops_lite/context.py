"""``get_step_context()`` and ``log_metadata()``: what a running step can ask and tell."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.errors import DefinitionError, UnrecordableParameterError
from mlops_lite.records import is_recordable


@dataclass
class StepContext:
    """What a step knows about the run it is part of."""

    run_name: str
    step_name: str
    pipeline_name: str
    cache_key: str
    output_names: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """A 32-bit seed derived from the step's cache key: same inputs, same seed."""
        return int(self.cache_key[:8], 16)


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "mlops_lite_step", default=None
)


def get_step_context() -> StepContext:
    """The context of the step that is running now."""
    context = _current.get()
    if context is None:
        raise DefinitionError(
            "get_step_context() was called outside a running step; call it from inside a @step "
            "function while its pipeline runs"
        )
    return context


def set_step_context(context: StepContext | None) -> contextvars.Token[StepContext | None]:
    return _current.set(context)


def reset_step_context(token: contextvars.Token[StepContext | None]) -> None:
    _current.reset(token)


def _plain(value: Any) -> Any:
    """numpy scalars (a loss, an accuracy) as the Python numbers they stand for."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def log_metadata(
    metadata: Mapping[str, Any],
    *,
    run_id_name_or_prefix: str | None = None,
    step_name: str | None = None,
) -> None:
    """Attach JSON-like metadata to a step or a run.

    Inside a step it lands on that step; inside a ``@pipeline`` function body it
    lands on the run. Anywhere, ``run_id_name_or_prefix`` (a run name, sha or
    sha prefix, as in ZenML) names a recorded run to annotate, and ``step_name``
    one of its steps. Values merge over earlier ones with the same key.
    """
    metadata = {key: _plain(value) for key, value in metadata.items()}
    for key, value in metadata.items():
        if not isinstance(key, str) or not is_recordable(value):
            raise UnrecordableParameterError(
                f"metadata {key!r}: a value of type {type(value).__qualname__} cannot be recorded; "
                "use JSON-like values (numbers, strings, lists, dicts)"
            )
    if run_id_name_or_prefix is not None:
        # Annotating a recorded run is an operation on the repository.
        from mlops_lite.annotate import annotate_run

        annotate_run(run_id_name_or_prefix, metadata, step_name=step_name)
        return
    if step_name is not None:
        raise DefinitionError("log_metadata(step_name=...) needs run_id_name_or_prefix=... too")
    context = _current.get()
    if context is not None:
        context.metadata.update(metadata)
        return
    from mlops_lite.pipelines import current_trace

    trace = current_trace()
    if trace is not None:
        trace.run_metadata.update(metadata)
        return
    raise DefinitionError(
        "log_metadata() was called outside a step and outside a pipeline definition; call it "
        "inside a @step function, inside the @pipeline function body for run metadata, or give "
        "run_id_name_or_prefix=... to annotate a recorded run"
    )
