"""``get_pipeline_context()``: what a ``@pipeline`` body knows while it is being composed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_lite.definition.tracing import current_trace
from mlops_lite.errors import DefinitionError

__all__ = ["PipelineContext", "get_pipeline_context"]


@dataclass(frozen=True)
class PipelineContext:
    """The pipeline being composed: its name, model, extra, settings and cache setting.

    ``model.get_artifact("name")`` here is a lazy reference, resolved when the run starts.
    """

    name: str
    model: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    enable_cache: bool = True


def get_pipeline_context() -> PipelineContext:
    """The context of the pipeline whose body is running (being composed) now."""
    trace = current_trace()
    context = getattr(trace, "context", None)
    if not isinstance(context, PipelineContext):
        raise DefinitionError(
            "get_pipeline_context() was called outside a pipeline body; call it inside a "
            "@pipeline function (inside a step, use get_step_context())"
        )
    return context
